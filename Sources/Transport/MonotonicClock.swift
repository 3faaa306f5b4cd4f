#if canImport(Glibc)
import Glibc
#endif

/// Time for timers and durations: CLOCK_MONOTONIC, immune to wall-clock steps.
public enum MonotonicClock {
    public static func nowNs() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    public static func nowMs() -> Int64 { nowNs() / 1_000_000 }
}

/// Wall time for stamps that leave the process (message timestamps, logs).
public enum WallClock {
    public static func nowMs() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    public static func nowUs() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }
}
