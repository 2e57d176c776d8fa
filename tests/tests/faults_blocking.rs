//! The fault-injection suite on the blocking backend: every scenario.

use roundtrip_tests::backend::Blocking;

roundtrip_tests::fault_suite!(@cases Blocking;
    close_before_response,
    close_mid_head,
    close_mid_body_sized,
    close_mid_body_chunked,
    reset_mid_body,
    reset_before_response,
    head_drip_timeout,
    interim_flood,
    unsolicited_bytes_on_idle,
    unsolicited_response_on_young_idle,
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
    never_answers_read_timeout,
    never_answers_request_timeout,
    never_reads,
    upload_never_read,
);
