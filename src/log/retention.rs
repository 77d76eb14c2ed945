//! Retention decisions: which leading segments to delete. Pure functions of plain segment
//! facts and `now`; the log does the deleting.

/// What retention needs to know about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentFacts {
    pub base_offset: i64,
    /// Base offset of the next segment, or the log end offset for the active segment.
    pub end_offset: i64,
    pub size: u64,
    /// Newest timestamp in the segment (-1 when unknown: such a segment is never expired).
    pub max_timestamp: i64,
    pub is_active: bool,
}

/// Why segments are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionReason {
    /// Entirely below the log start offset (after DeleteRecords or an earlier deletion).
    LogStartOffset,
    /// Newest record older than `retention.ms`.
    Time,
    /// The log is larger than `retention.bytes`.
    Size,
}

/// Settings and bounds for one retention pass.
#[derive(Debug, Clone, Copy)]
pub struct RetentionInputs {
    pub now_ms: i64,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<u64>,
    /// `cleanup.policy` includes `delete` (time and size retention apply).
    pub delete_policy: bool,
    pub log_start_offset: i64,
    /// Only segments that end at or below this offset (the high watermark) may go.
    pub max_end_offset: i64,
}

/// How many leading segments to delete, and why (Kafka's order: log start offset, then
/// time, then size). Zero when nothing is due. The active segment can be chosen only for the
/// first two reasons, and only when non-empty: the log then rolls before deleting it.
pub fn segments_to_delete(segments: &[SegmentFacts], r: RetentionInputs) -> (usize, Option<RetentionReason>) {
    let deletable = |s: &SegmentFacts| s.end_offset <= r.max_end_offset && !(s.is_active && s.size == 0);
    let by_start = segments.iter().take_while(|s| deletable(s) && s.end_offset <= r.log_start_offset).count();
    if by_start > 0 {
        return (by_start, Some(RetentionReason::LogStartOffset));
    }
    if !r.delete_policy {
        return (0, None);
    }
    if let Some(ms) = r.retention_ms {
        let n = segments
            .iter()
            .take_while(|s| deletable(s) && s.max_timestamp >= 0 && r.now_ms.saturating_sub(s.max_timestamp) > ms)
            .count();
        if n > 0 {
            return (n, Some(RetentionReason::Time));
        }
    }
    if let Some(limit) = r.retention_bytes {
        let total: u64 = segments.iter().map(|s| s.size).sum();
        let mut excess = total.saturating_sub(limit);
        let n = segments
            .iter()
            .take_while(|s| {
                if s.is_active || !deletable(s) || s.size > excess {
                    return false;
                }
                excess -= s.size;
                true
            })
            .count();
        if n > 0 {
            return (n, Some(RetentionReason::Size));
        }
    }
    (0, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, end: i64, size: u64, ts: i64, active: bool) -> SegmentFacts {
        SegmentFacts { base_offset: base, end_offset: end, size, max_timestamp: ts, is_active: active }
    }

    fn inputs(now_ms: i64) -> RetentionInputs {
        RetentionInputs {
            now_ms,
            retention_ms: Some(1_000),
            retention_bytes: None,
            delete_policy: true,
            log_start_offset: 0,
            max_end_offset: i64::MAX,
        }
    }

    fn log() -> Vec<SegmentFacts> {
        vec![seg(0, 10, 100, 1_000, false), seg(10, 20, 100, 2_000, false), seg(20, 25, 50, 3_000, true)]
    }

    #[test]
    fn time_retention_deletes_the_expired_prefix_only() {
        assert_eq!(segments_to_delete(&log(), inputs(2_000)), (0, None));
        assert_eq!(segments_to_delete(&log(), inputs(2_001)), (1, Some(RetentionReason::Time)));
        assert_eq!(segments_to_delete(&log(), inputs(3_500)), (2, Some(RetentionReason::Time)));
    }

    #[test]
    fn time_retention_may_take_a_fully_expired_active_segment() {
        assert_eq!(segments_to_delete(&log(), inputs(10_000)), (3, Some(RetentionReason::Time)));
    }

    #[test]
    fn size_retention_keeps_the_log_at_or_under_the_limit_and_spares_the_active_segment() {
        let r = RetentionInputs { retention_ms: None, retention_bytes: Some(150), ..inputs(0) };
        assert_eq!(segments_to_delete(&log(), r), (1, Some(RetentionReason::Size)));
        let r = RetentionInputs { retention_bytes: Some(0), ..r };
        assert_eq!(segments_to_delete(&log(), r), (2, Some(RetentionReason::Size)));
        let r = RetentionInputs { retention_bytes: Some(250), ..r };
        assert_eq!(segments_to_delete(&log(), r), (0, None));
    }

    #[test]
    fn segments_below_the_log_start_offset_go_first_even_without_delete_policy() {
        let r = RetentionInputs { log_start_offset: 15, delete_policy: false, ..inputs(0) };
        assert_eq!(segments_to_delete(&log(), r), (1, Some(RetentionReason::LogStartOffset)));
        let r = RetentionInputs { log_start_offset: 20, ..r };
        assert_eq!(segments_to_delete(&log(), r), (2, Some(RetentionReason::LogStartOffset)));
    }

    #[test]
    fn nothing_above_the_high_watermark_is_deleted() {
        let r = RetentionInputs { max_end_offset: 15, ..inputs(10_000) };
        assert_eq!(segments_to_delete(&log(), r), (1, Some(RetentionReason::Time)));
    }

    #[test]
    fn segments_without_timestamps_never_expire_by_time() {
        let segs = vec![seg(0, 10, 100, -1, false), seg(10, 20, 100, 5, false)];
        assert_eq!(segments_to_delete(&segs, inputs(10_000)), (0, None));
    }

    #[test]
    fn an_empty_active_segment_is_never_deleted() {
        let segs = vec![seg(0, 0, 0, -1, true)];
        let r = RetentionInputs { log_start_offset: 0, ..inputs(10_000) };
        assert_eq!(segments_to_delete(&segs, r), (0, None));
    }
}
