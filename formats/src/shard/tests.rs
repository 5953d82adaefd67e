use super::*;
use proptest::prelude::*;

fn header(rows: u32, dim: u32, encoding: Encoding, vocabulary: &[&str]) -> ShardHeader {
    ShardHeader {
        model_id: ModelId::of_bytes(b"model"),
        dim,
        rows,
        encoding,
        device_id: "device-1".into(),
        batch_id: "batch-7".into(),
        created_unix_ms: 1_700_000_000_000,
        label_vocabulary: vocabulary.iter().map(|s| s.to_string()).collect(),
    }
}

fn values(rows: u32, dim: u32) -> Vec<f32> {
    (0..rows * dim).map(|i| (i as f32 * 0.37).sin() * 3.0).collect()
}

#[test]
fn f32_shard_round_trips_exactly() {
    let shard = Shard::new(header(3, 5, Encoding::F32, &[]), values(3, 5), None).unwrap();
    let back = Shard::decode(&shard.encode().unwrap()).unwrap();
    assert_eq!(back, shard);
    assert_eq!(back.row(2), &values(3, 5)[10..15]);
    assert_eq!(back.label(0), None);
}

#[test]
fn decoding_into_a_used_buffer_replaces_its_contents() {
    let big = Shard::new(header(6, 5, Encoding::F32, &[]), values(6, 5).iter().map(|v| v + 9.0).collect(), None);
    let small = Shard::new(header(3, 5, Encoding::F32, &[]), values(3, 5), None).unwrap();
    let buffer = Shard::decode(&big.unwrap().encode().unwrap()).unwrap().into_parts().1;
    let capacity = buffer.capacity();
    let back = Shard::decode_into(&small.encode().unwrap(), buffer).unwrap();
    assert_eq!(back, small);
    assert_eq!(back.into_parts().1.capacity(), capacity, "the buffer was reused, not reallocated");
}

#[test]
fn f16_shard_round_trips_within_half_precision() {
    let shard = Shard::new(header(4, 8, Encoding::F16, &[]), values(4, 8), None).unwrap();
    let bytes = shard.encode().unwrap();
    let back = Shard::decode(&bytes).unwrap();
    for (a, b) in back.values().iter().zip(values(4, 8)) {
        assert!((a - b).abs() <= 3.0 * 2f32.powi(-11), "{a} vs {b}");
    }
    let f32_len = Shard::new(header(4, 8, Encoding::F32, &[]), values(4, 8), None).unwrap().encode().unwrap().len();
    assert_eq!(f32_len - bytes.len(), 4 * 8 * 2, "f16 halves the payload");
}

#[test]
fn labels_round_trip_and_are_optional_per_row() {
    let shard =
        Shard::new(header(3, 2, Encoding::F32, &["apple", "pear"]), values(3, 2), Some(vec![1, NO_LABEL, 0])).unwrap();
    let back = Shard::decode(&shard.encode().unwrap()).unwrap();
    assert_eq!(back.label(0), Some("pear"));
    assert_eq!(back.label(1), None);
    assert_eq!(back.label(2), Some("apple"));
}

#[test]
fn header_alone_can_be_read() {
    let shard = Shard::new(header(2, 3, Encoding::F32, &[]), values(2, 3), None).unwrap();
    assert_eq!(Shard::decode_header(&shard.encode().unwrap()).unwrap(), *shard.header());
}

#[test]
fn non_finite_values_are_refused_with_their_position() {
    let mut v = values(3, 4);
    v[9] = f32::NAN;
    let err = Shard::new(header(3, 4, Encoding::F32, &[]), v.clone(), None).unwrap_err();
    assert_eq!(err, FormatError::NonFinite { row: 2, col: 1 });
    // A NaN smuggled into encoded bytes (valid checksum) is refused on decode too.
    let good = Shard::new(header(3, 4, Encoding::F32, &[]), values(3, 4), None).unwrap();
    let body = codec::open_frame(&SHARD_FRAME, &good.encode().unwrap()).unwrap().to_vec();
    let mut body = body;
    let at = body.len() - 4;
    body[at..].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let err = Shard::decode(&codec::seal_frame(&SHARD_FRAME, &body)).unwrap_err();
    assert_eq!(err, FormatError::NonFinite { row: 2, col: 3 });
}

#[test]
fn a_view_decodes_any_rows_and_places_a_non_finite_value_in_the_shard() {
    let v = values(5, 4);
    let good = Shard::new(header(5, 4, Encoding::F32, &[]), v.clone(), None).unwrap().encode().unwrap();
    let view = ShardView::parse(&good).unwrap();
    let mut rows = vec![7.0; 100];
    view.rows_into(3..5, &mut rows).unwrap();
    assert_eq!(rows, &v[12..20]);
    // Smuggle a NaN into row 4 behind a valid checksum: rows 0..3 still decode.
    let mut body = codec::open_frame(&SHARD_FRAME, &good).unwrap().to_vec();
    let at = body.len() - 4 * 3;
    body[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let bad = codec::seal_frame(&SHARD_FRAME, &body);
    let view = ShardView::parse(&bad).unwrap();
    view.rows_into(0..3, &mut rows).unwrap();
    assert_eq!(view.rows_into(3..5, &mut rows).unwrap_err(), FormatError::NonFinite { row: 4, col: 1 });
    assert_eq!(Shard::decode(&bad).unwrap_err(), FormatError::NonFinite { row: 4, col: 1 });
}

#[test]
fn a_view_refuses_rows_past_its_end_instead_of_panicking() {
    let good = Shard::new(header(5, 4, Encoding::F32, &[]), values(5, 4), None).unwrap().encode().unwrap();
    let view = ShardView::parse(&good).unwrap();
    let mut rows = Vec::new();
    let past = FormatError::LimitExceeded { what: "row range end", value: 6, limit: 5 };
    assert_eq!(view.rows_into(4..6, &mut rows).unwrap_err(), past);
    #[allow(clippy::reversed_empty_ranges, reason = "the reversed range is the input under test")]
    let reversed = view.rows_into(3..2, &mut rows);
    assert!(matches!(reversed, Err(FormatError::LimitExceeded { what: "row range end", .. })));
}

#[test]
fn inconsistent_shards_cannot_be_built() {
    assert!(Shard::new(header(3, 4, Encoding::F32, &[]), values(2, 4), None).is_err());
    assert!(Shard::new(header(2, 4, Encoding::F32, &["a"]), values(2, 4), None).is_err());
    assert!(Shard::new(header(2, 4, Encoding::F32, &[]), values(2, 4), Some(vec![0, 0])).is_err());
    assert!(Shard::new(header(2, 4, Encoding::F32, &["a"]), values(2, 4), Some(vec![0, 1])).is_err());
    assert!(Shard::new(header(0, 0, Encoding::F32, &[]), vec![], None).is_err());
}

/// A frame with a valid checksum whose header lies about the payload size.
fn lying_shard(rows: u32, dim: u32) -> Vec<u8> {
    let h = codec::to_bincode("shard header", &header(rows, dim, Encoding::F32, &[])).unwrap();
    let mut body = (h.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&h);
    body.extend_from_slice(&[0u8; 16]);
    codec::seal_frame(&SHARD_FRAME, &body)
}

#[test]
fn hostile_declared_sizes_are_refused_before_allocation() {
    assert!(matches!(Shard::decode(&lying_shard(MAX_ROWS, MAX_DIM)), Err(FormatError::LengthMismatch { .. })));
    assert!(matches!(
        Shard::decode(&lying_shard(u32::MAX, 1280)),
        Err(FormatError::LimitExceeded { what: "rows", .. })
    ));
    assert!(matches!(Shard::decode(&lying_shard(1, u32::MAX)), Err(FormatError::LimitExceeded { what: "dim", .. })));
    let mut body = u32::MAX.to_le_bytes().to_vec();
    body.extend_from_slice(&[0u8; 8]);
    assert!(matches!(
        Shard::decode(&codec::seal_frame(&SHARD_FRAME, &body)),
        Err(FormatError::LimitExceeded { what: "header length", .. })
    ));
}

#[test]
fn truncation_anywhere_is_a_typed_error() {
    let bytes =
        Shard::new(header(2, 3, Encoding::F32, &["x"]), values(2, 3), Some(vec![0, 0])).unwrap().encode().unwrap();
    for cut in 0..bytes.len() {
        assert!(Shard::decode(&bytes[..cut]).is_err(), "cut at {cut} accepted");
    }
}

proptest! {
    // `FRUITS_FUZZ_CASES` raises the count for a longer run (BENCHMARKS.md).
    #![proptest_config(ProptestConfig { cases: crate::fuzz_cases(512), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Shard::decode(&bytes);
    }

    #[test]
    fn arbitrary_bodies_in_valid_frames_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Shard::decode(&codec::seal_frame(&SHARD_FRAME, &body));
    }

    #[test]
    fn any_valid_shard_round_trips(rows in 1u32..6, dim in 1u32..9, seed in any::<u64>()) {
        let v: Vec<f32> = (0..rows * dim).map(|i| ((seed ^ i as u64) % 1000) as f32 / 7.0).collect();
        let shard = Shard::new(header(rows, dim, Encoding::F32, &[]), v, None).unwrap();
        prop_assert_eq!(Shard::decode(&shard.encode().unwrap()).unwrap(), shard);
    }
}
