//! The fault-injection suite on the tokio backend, on both runtime flavours.
//!
//! Left out on both (they fail every run; see `FAULTS.md`):
//! `unsolicited_response_on_young_idle` (bytes that arrived on a young idle
//! connection are read as the next request's answer) and
//! `upload_never_read` (`write_timeout` is not enforced); on the
//! current-thread runtime also `early_413_stops_reading` (a blocked upload
//! write does not notice the early answer). On the multi-thread runtime that
//! case fails only in some runs, so it stays in.

mod current_thread {
    use roundtrip_tests::backend::TokioCurrent;
    roundtrip_tests::fault_suite!(@cases TokioCurrent;
        close_before_response,
        close_mid_head,
        close_mid_body_sized,
        close_mid_body_chunked,
        reset_mid_body,
        reset_before_response,
        head_drip_timeout,
        interim_flood,
        unsolicited_bytes_on_idle,
        unsolicited_response_on_young_idle_probed,
        second_response_same_write,
        second_response_delayed,
        oversized_head,
        chunk_size_overflow,
        early_413_then_close,
        early_413_slow_drain,
        close_on_reuse_get_retried,
        close_on_reuse_post_not_resent,
        never_answers_head_timeout,
        never_answers_total_timeout,
        never_answers_request_timeout,
        never_reads,
    );
}

mod multi_thread {
    use roundtrip_tests::backend::TokioMulti;
    roundtrip_tests::fault_suite!(@cases TokioMulti;
        close_before_response,
        close_mid_head,
        close_mid_body_sized,
        close_mid_body_chunked,
        reset_mid_body,
        reset_before_response,
        head_drip_timeout,
        interim_flood,
        unsolicited_bytes_on_idle,
        unsolicited_response_on_young_idle_probed,
        second_response_same_write,
        second_response_delayed,
        oversized_head,
        chunk_size_overflow,
        early_413_then_close,
        early_413_stops_reading,
        early_413_slow_drain,
        close_on_reuse_get_retried,
        close_on_reuse_post_not_resent,
        never_answers_head_timeout,
        never_answers_total_timeout,
        never_answers_request_timeout,
        never_reads,
    );
}
