//! Literal layouts, round trips and malformed records.

use super::*;

pub(crate) fn sample_socket() -> SocketEvent<'static> {
    SocketEvent {
        ts_ns: 0x0102_0304_0506_0708,
        kind: SocketEventKind::Data,
        direction: DataDirection::Send,
        ip_proto: 6,
        pid: 4242,
        tid: 4243,
        comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
        cgroup_id: 77,
        netns: 4026531840,
        cookie: 0xAABB,
        local: "10.0.0.1:40000".parse().unwrap(),
        remote: "10.0.0.2:80".parse().unwrap(),
        old_state: 0,
        new_state: 0,
        hook: 3,
        stream_offset: 0,
        orig_len: 100,
        payload: b"GET / HTTP/1.1\r\n",
    }
}

#[test]
fn socket_event_literal_layout() {
    let mut b = Vec::new();
    sample_socket().encode(&mut b);
    // Header.
    assert_eq!(&b[0..4], b"JUNO");
    assert_eq!(b[4], 1, "major");
    assert_eq!(b[5], MINOR, "minor");
    assert_eq!(&b[6..8], &[2, 0], "type = socket");
    assert_eq!(&b[8..10], &[116, 0], "fixed_len");
    assert_eq!(&b[12..16], &[116 + 16, 0, 0, 0], "body_len");
    let f = &b[16..];
    assert_eq!(&f[0..8], &[8, 7, 6, 5, 4, 3, 2, 1], "ts little-endian");
    assert_eq!(f[8], 4, "kind = data");
    assert_eq!(f[9], 1, "direction = send");
    assert_eq!(f[10], 6, "tcp");
    assert_eq!(f[11], 4, "ipv4");
    assert_eq!(&f[12..16], &4242u32.to_le_bytes());
    assert_eq!(&f[44..48], &[10, 0, 0, 1], "local addr");
    assert_eq!(&f[60..64], &[10, 0, 0, 2], "remote addr");
    assert_eq!(&f[76..78], &40000u16.to_le_bytes());
    assert_eq!(&f[78..80], &80u16.to_le_bytes());
    assert_eq!(&f[92..96], &100u32.to_le_bytes(), "orig_len");
    assert_eq!(&f[96..100], &16u32.to_le_bytes(), "cap_len");
    assert_eq!(&f[100..104], b"curl");
    assert_eq!(&f[116..], b"GET / HTTP/1.1\r\n");
    assert_eq!(b.len(), sample_socket().encoded_len());
}

#[test]
fn socket_event_round_trip_and_padding() {
    let ev = sample_socket();
    let mut b = Vec::new();
    ev.encode(&mut b);
    b.extend_from_slice(&[0, 0, 0]); // pcapng padding after the record
    let mut st = DecodeStats::default();
    assert_eq!(
        decode(&b, &mut st).unwrap(),
        Decoded::Record(Record::Socket(ev))
    );
    assert_eq!(st, DecodeStats::default());
}

#[test]
fn newer_minor_with_longer_fixed_part_is_read_and_counted() {
    let ev = sample_socket();
    let mut b = Vec::new();
    ev.encode(&mut b);
    // Pretend a v1.3 writer appended 8 bytes to the fixed part.
    let mut newer = b[..16 + 116].to_vec();
    newer.extend_from_slice(&[0xEE; 8]);
    newer.extend_from_slice(ev.payload);
    newer[5] = 3;
    newer[8..10].copy_from_slice(&124u16.to_le_bytes());
    let body = (newer.len() - 16) as u32;
    newer[12..16].copy_from_slice(&body.to_le_bytes());
    let mut st = DecodeStats::default();
    assert_eq!(
        decode(&newer, &mut st).unwrap(),
        Decoded::Record(Record::Socket(ev))
    );
    assert_eq!(st.newer_minor, 1);
}

#[test]
fn other_major_and_unknown_type_are_skipped() {
    let mut b = Vec::new();
    sample_socket().encode(&mut b);
    let mut st = DecodeStats::default();
    let mut m2 = b.clone();
    m2[4] = 2;
    assert_eq!(
        decode(&m2, &mut st).unwrap(),
        Decoded::Skipped(RecordType::Socket)
    );
    let mut t = b.clone();
    t[6] = 99;
    assert_eq!(
        decode(&t, &mut st).unwrap(),
        Decoded::Skipped(RecordType::Unknown(99))
    );
    assert_eq!(st.other_major, 1);
    assert_eq!(st.unknown_type, 1);
}

#[test]
fn malformed_records_are_errors_not_panics() {
    let mut b = Vec::new();
    sample_socket().encode(&mut b);
    let mut st = DecodeStats::default();
    for cut in 0..b.len() {
        assert!(decode(&b[..cut], &mut st).is_err(), "cut {cut}");
    }
    let mut lie = b.clone();
    lie[16 + 96..16 + 100].copy_from_slice(&u32::MAX.to_le_bytes()); // cap_len
    assert!(matches!(
        decode(&lie, &mut st),
        Err(RecordError::BadLength { .. })
    ));
    let mut fx = b.clone();
    fx[8..10].copy_from_slice(&1000u16.to_le_bytes()); // fixed_len > body_len
    assert!(decode(&fx, &mut st).is_err());
    let mut magic = b;
    magic[0] = b'X';
    assert_eq!(decode(&magic, &mut st), Err(RecordError::BadMagic));
}

#[test]
fn metadata_tlv_literal_and_unknown_tags() {
    let rec = MetaRecord {
        ts_ns: 5,
        op: MetaOp::Upsert,
        entity: Entity::Node(NodeMeta {
            name: "n1".into(),
            kernel: None,
            boot_id: None,
        }),
    };
    let mut b = Vec::new();
    rec.encode(&mut b);
    assert_eq!(&b[6..8], &[3, 0], "type = metadata");
    assert_eq!(&b[16..24], &5u64.to_le_bytes());
    assert_eq!(b[24], 2, "op = upsert");
    assert_eq!(b[25], 1, "entity = node");
    assert_eq!(
        &b[28..],
        &[1, 0, 2, 0, b'n', b'1'],
        "tag NAME, len 2, value"
    );
    // Append an unknown tag 999.
    b.extend_from_slice(&[0xE7, 0x03, 1, 0, 0x55]);
    let body = (b.len() - 16) as u32;
    b[12..16].copy_from_slice(&body.to_le_bytes());
    let mut st = DecodeStats::default();
    assert_eq!(
        decode(&b, &mut st).unwrap(),
        Decoded::Record(Record::Metadata(rec))
    );
    assert_eq!(st.unknown_tags, 1);
}

#[test]
fn stats_record_round_trip() {
    let s = StatsRecord {
        ts_ns: 9,
        counters: vec![
            Counter {
                name: "ringbuf_reserve_failed".into(),
                cpu: Some(1),
                value: 3,
            },
            Counter {
                name: "queue_dropped".into(),
                cpu: None,
                value: 0,
            },
        ],
    };
    let mut b = Vec::new();
    s.encode(&mut b);
    let mut st = DecodeStats::default();
    assert_eq!(
        decode(&b, &mut st).unwrap(),
        Decoded::Record(Record::Stats(s))
    );
}

#[test]
fn tls_data_events_are_kind_8_and_round_trip() {
    let ev = SocketEvent {
        kind: SocketEventKind::TlsData,
        hook: 20,
        ..sample_socket()
    };
    let mut b = Vec::new();
    ev.encode(&mut b);
    assert_eq!(b[5], 2, "minor 2: TLS data events");
    assert_eq!(b[16 + 8], 8, "kind");
    let mut st = DecodeStats::default();
    assert_eq!(
        decode(&b, &mut st).unwrap(),
        Decoded::Record(Record::Socket(ev))
    );
    // A reader that does not know the kind keeps it as unknown (what a 1.1 reader does).
    assert_eq!(SocketEventKind::from(9), SocketEventKind::Unknown(9));
}

#[test]
fn file_info_redaction_policy_round_trips_and_older_readers_skip_it() {
    let fi = FileInfo {
        start_ns: 5,
        sequence: 2,
        node: "n1".into(),
        redaction: Some("rules=http-auth,redis;headers=x-api-key;params=token;fill=*".into()),
        ..Default::default()
    };
    let mut b = Vec::new();
    fi.encode(&mut b);
    assert!(b[5] >= 1, "minor 1 or later: the REDACTION field");
    // The field: tag 28, length, the policy text, after NODE.
    let tlv = &b[16 + 16..];
    assert_eq!(&tlv[..4], &[4, 0, 2, 0]);
    assert_eq!(&tlv[6..8], &28u16.to_le_bytes());
    let mut st = DecodeStats::default();
    assert_eq!(
        decode(&b, &mut st).unwrap(),
        Decoded::Record(Record::FileInfo(fi.clone()))
    );
    assert_eq!(st, DecodeStats::default());
    // What a 1.0 reader does with it: a tag it does not know is skipped and counted; the
    // rest of the record reads the same.
    let mut unknown = b.clone();
    unknown[16 + 16 + 6..16 + 16 + 8].copy_from_slice(&999u16.to_le_bytes());
    let mut st = DecodeStats::default();
    assert_eq!(
        decode(&unknown, &mut st).unwrap(),
        Decoded::Record(Record::FileInfo(FileInfo {
            redaction: None,
            ..fi
        }))
    );
    assert_eq!(st.unknown_tags, 1);
}
