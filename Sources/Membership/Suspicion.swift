/// A running suspicion of one member (Lifeguard §IV-B): its timeout starts at the ceiling
/// and falls towards the floor as independent members confirm it, so a member that
/// many suspect is declared dead sooner, and one suspected by a single struggling
/// prober has the longest time to refute.
struct Suspicion: Sendable {
    let incarnation: UInt64
    let start: UInt64
    let bounds: (min: UInt64, max: UInt64)
    /// Confirmations that count: k from the config.
    let needed: Int
    /// Members that suspect it (the first suspector included).
    private(set) var suspectors: Set<String>

    init(incarnation: UInt64, start: UInt64, bounds: (min: UInt64, max: UInt64), needed: Int, from: String) {
        self.incarnation = incarnation
        self.start = start
        self.bounds = bounds
        self.needed = needed
        self.suspectors = [from]
    }

    /// Records an independent confirmation; true if it was new (worth re-gossiping).
    mutating func confirm(by member: String) -> Bool {
        suspectors.insert(member).inserted
    }

    /// When the member is declared dead unless it refutes.
    var deadline: UInt64 {
        let confirmations = suspectors.count - 1
        guard needed > 0, bounds.max > bounds.min else { return start + bounds.min }
        // timeout = max - (max - min) * ln(c + 1) / ln(k + 1), never below min.
        let fraction = min(1, MembershipConfig.naturalLog(Double(confirmations + 1)) / MembershipConfig.naturalLog(Double(needed + 1)))
        let span = Double(bounds.max - bounds.min)
        return start + bounds.max - UInt64(fraction * span)
    }
}
