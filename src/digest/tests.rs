use super::*;

/// Published vectors of "abc" for every algorithm (FIPS 180-4 and 202, RFC 1321 and 7693, the
/// BLAKE3 paper's test vectors), and a BLAKE2b of another length (from `b2sum -l 256`).
#[test]
fn published_abc_vectors() {
    let want = [
        (Algorithm::Md5, "900150983cd24fb0d6963f7d28e17f72"),
        (Algorithm::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            Algorithm::Sha224,
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
        ),
        (
            Algorithm::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            Algorithm::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            Algorithm::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
        (
            Algorithm::Sha3_224,
            "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf",
        ),
        (
            Algorithm::Sha3_256,
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
        ),
        (
            Algorithm::Sha3_384,
            "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b2\
             98d88cea927ac7f539f1edf228376d25",
        ),
        (
            Algorithm::Sha3_512,
            "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e\
             10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
        ),
        (
            Algorithm::Blake2b(Blake2bLen::MAX),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1\
             7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
        ),
        (
            Algorithm::blake2b(256).unwrap(),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319",
        ),
        (
            Algorithm::Blake3,
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
        ),
    ];
    for (algorithm, hex) in want {
        let mut hasher = Hasher::new(Algorithms::one(algorithm));
        hasher.update(b"a");
        hasher.update(b"bc");
        let digests = hasher.finalize();
        let digest = *digests.first();
        assert_eq!(format!("{digest:?}"), hex, "{algorithm}");
        assert_eq!(digest.as_bytes().len(), algorithm.digest_len());
        assert_eq!(
            Digest::from_hex(algorithm, hex.to_uppercase().as_bytes()),
            Some(digest)
        );
    }
}

/// Several algorithms from one read give each the digest it gives alone, in list order.
#[test]
fn several_algorithms_in_one_read() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    let list = [
        Algorithm::Blake3,
        Algorithm::Md5,
        Algorithm::Sha3_256,
        Algorithm::blake2b(160).unwrap(),
        Algorithm::Sha256,
    ];
    let mut all = Hasher::new(Algorithms::new(&list).unwrap());
    for piece in data.chunks(100_000) {
        all.update(piece);
    }
    let all = all.finalize();
    let got: Vec<_> = all.iter().map(|(a, d)| (a, *d)).collect();
    let alone: Vec<_> = list
        .iter()
        .map(|&a| {
            let mut h = Hasher::new(Algorithms::one(a));
            h.update(&data);
            (a, *h.finalize().first())
        })
        .collect();
    assert_eq!(got, alone);
    assert_eq!(all.algorithms().as_slice(), list);
}

#[test]
fn lists_hold_one_of_a_kind() {
    assert_eq!(Algorithms::new(&[]), Err(ListError::Empty));
    let blake = |bits| Algorithm::blake2b(bits).unwrap();
    assert_eq!(
        Algorithms::new(&[blake(256), Algorithm::Md5, blake(512)]),
        Err(ListError::Twice(blake(512)))
    );
    let every = Algorithms::new(&Algorithm::ALL).unwrap();
    assert_eq!(every.as_slice(), Algorithm::ALL);
    assert_eq!(every.to_string().split(',').count(), 12);
    assert_eq!(Algorithms::default(), Algorithms::SHA256);
}

#[test]
fn tags_and_names() {
    let cases = [
        (Algorithm::Md5, "MD5", "md5"),
        (Algorithm::Sha1, "SHA1", "sha1"),
        (Algorithm::Sha384, "SHA384", "sha384"),
        (Algorithm::Sha3_224, "SHA3-224", "sha3-224"),
        (Algorithm::Blake2b(Blake2bLen::MAX), "BLAKE2b", "blake2b"),
        (Algorithm::blake2b(8).unwrap(), "BLAKE2b-8", "blake2b-8"),
        (Algorithm::Blake3, "BLAKE3", "blake3"),
    ];
    for (algorithm, tag, name) in cases {
        assert_eq!(algorithm.tag(), tag);
        assert_eq!(algorithm.to_string(), name);
    }
    assert_eq!(
        Algorithm::from_tag(b"SHA3", Some(256)),
        Some(Algorithm::Sha3_256)
    );
    assert_eq!(
        Algorithm::from_tag(b"SHA2", Some(224)),
        Some(Algorithm::Sha224)
    );
    assert_eq!(
        Algorithm::from_tag(b"SHA3", None),
        Some(Algorithm::Sha3_512)
    );
    assert_eq!(
        Algorithm::from_tag(b"BLAKE2b", Some(8)),
        Algorithm::blake2b(8)
    );
    assert_eq!(Algorithm::from_tag(b"BLAKE2b", Some(7)), None);
    assert_eq!(Algorithm::from_tag(b"MD5", Some(64)), None);
    assert_eq!(Algorithm::from_tag(b"md5", None), None);
    for name in Selector::NAMES {
        assert!(Selector::from_name(name).is_some(), "{name}");
    }
    assert_eq!(Selector::from_name("blake2b-256"), None);
    assert_eq!(Selector::from_name("SHA256"), None);
}

/// GNU's rule for base64 digests (coreutils 9.8 `valid_digits`, `b64_equal`), against
/// encodings made by Python's `base64` (the text is written out here).
#[test]
fn base64_digests_as_gnu_reads_them() {
    // MD5 of "abc", 16 bytes: 22 letters and two `=`.
    let md5 = Digest::from_hex(Algorithm::Md5, b"900150983cd24fb0d6963f7d28e17f72").unwrap();
    assert_eq!(
        Digest::from_base64(Algorithm::Md5, b"kAFQmDzST7DWlj99KOF/cg=="),
        Some(md5)
    );
    let mut out = Vec::new();
    md5.push_base64(&mut out);
    assert_eq!(out, b"kAFQmDzST7DWlj99KOF/cg==");
    // The same bits spelt with spare bits set in the last letter: not a digest's encoding.
    assert_eq!(
        Digest::from_base64(Algorithm::Md5, b"kAFQmDzST7DWlj99KOF/ch=="),
        Some(Digest::UNMATCHABLE)
    );
    // Wrong padding, wrong length, letters outside the standard alphabet.
    for bad in [
        &b"kAFQmDzST7DWlj99KOF/cg="[..],
        b"kAFQmDzST7DWlj99KOF/cg=A",
        b"kAFQmDzST7DWlj99KOF_cg==",
        b"kAFQmDzST7DWlj99KOF/cg",
    ] {
        assert_eq!(Digest::from_base64(Algorithm::Md5, bad), None, "{bad:?}");
    }
    // Untagged: the shape tells hex from base64, and the family its member.
    let sha256_b64 = b"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
    let (algorithm, digest) = Selector::Sha2.read_untagged(sha256_b64).unwrap();
    assert_eq!(algorithm, Algorithm::Sha256);
    assert_eq!(
        format!("{digest:?}"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // 64 letters that are all hex digits are a hex SHA-256, not a base64 SHA-384.
    let (algorithm, _) = Selector::Sha2.read_untagged(&[b'a'; 64]).unwrap();
    assert_eq!(algorithm, Algorithm::Sha256);
    // BLAKE2b: any even number of hex digits, or base64 whose padding fits one length.
    let (algorithm, _) = Selector::Blake2b.read_untagged(b"ab").unwrap();
    assert_eq!(algorithm, Algorithm::blake2b(8).unwrap());
    let (algorithm, _) = Selector::Blake2b.read_untagged(b"qw==").unwrap();
    assert_eq!(algorithm, Algorithm::blake2b(8).unwrap());
    assert_eq!(Selector::Blake2b.read_untagged(b"abc"), None);
    assert_eq!(Selector::Blake2b.read_untagged(&[b'a'; 130]), None);
}

/// BLAKE3 spread over threads gives the digest of the blake3 crate, whatever the pieces;
/// for other sets, `update_parallel` is `update`.
#[test]
fn blake3_in_parallel() {
    let data: Vec<u8> = (0..(5 << 20) + 123u32)
        .map(|i| (i ^ (i >> 9)) as u8)
        .collect();
    let want = blake3::hash(&data);
    for piece in [PARALLEL_UNIT - 1, PARALLEL_UNIT, 3 << 20, data.len()] {
        let mut hasher = Hasher::new(Algorithms::one(Algorithm::Blake3));
        assert_eq!(hasher.parallel_unit(), Some(PARALLEL_UNIT));
        for chunk in data.chunks(piece) {
            hasher.update_parallel(chunk);
        }
        assert_eq!(
            hasher.finalize().first().as_bytes(),
            want.as_bytes(),
            "pieces of {piece}"
        );
    }
    let mut md5 = Hasher::new(Algorithms::one(Algorithm::Md5));
    md5.update_parallel(b"abc");
    assert_eq!(
        format!("{:?}", md5.finalize().first()),
        "900150983cd24fb0d6963f7d28e17f72"
    );
    let both = Hasher::new(Algorithms::new(&[Algorithm::Blake3, Algorithm::Md5]).unwrap());
    assert_eq!(both.parallel_unit(), None);
    assert_eq!(Hasher::new(Algorithms::SHA256).parallel_unit(), None);
}
