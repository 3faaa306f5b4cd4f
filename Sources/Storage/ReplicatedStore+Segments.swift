extension ReplicatedStore {
    /// Deletes entry-log segments no stored entry lies in any more (trimming, dropped
    /// replicas and snapshots free them), once no reader can still reach them
    /// (`SegmentPins`). Never the segment being written, nor any from the one SQLite's
    /// watermark names: a replay after a power loss starts there. Returns how many went.
    @discardableResult
    public func collectSegments() throws(StorageError) -> Int {
        let pins = directory.segmentPins
        let onDisk = try entryLog.segmentsOnDisk()
        if let first = onDisk.first, first < entryLog.segment {
            let candidate = min(try tables.oldestSegment() ?? entryLog.segment, entryLog.segment)
            if first < candidate {
                // A synced commit first: the state that frees them (trims, drops, truncated
                // suffixes, and the watermark) must not come back after a power loss.
                let floor = try durably { () throws(StorageError) -> UInt64 in
                    try tables.setWatermark(entryLog.watermark)
                    return min(try tables.oldestSegment() ?? entryLog.segment, entryLog.segment)
                }
                pins.condemn(onDisk.filter { $0 < floor }, floor: floor)
                tables.segments.forget(below: floor)
            }
        }
        let free = pins.releasable()
        for segment in free { entryLog.remove(segment) }
        return free.count
    }
}
