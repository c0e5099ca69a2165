//! Every algorithm against the tools its users know. Lines are compared byte for byte with GNU
//! `md5sum`, `sha1sum`, `sha224sum`...`sha512sum`, `b2sum [-l N]` and `cksum -a ...` (coreutils
//! 9.1 on the reference machines), and `check` with `cksum -c`, `md5sum -c` and `b2sum -c`.
//! What 9.1 cannot do is built here from references, never from sumpool's output: SHA-3 and
//! every base64 digest from Python's `hashlib` and `base64` (the line shapes of coreutils 9.8,
//! `src/digest.c`), BLAKE3 from the `blake3` crate, and from `b3sum` too when it is installed.
//!
//! The files are sized around each algorithm's block (64 bytes for MD5, SHA-1, SHA-256 and a
//! BLAKE3 block; 128 for SHA-512 and BLAKE2b; 72 to 144 for the SHA-3 rates; 1024 for a BLAKE3
//! chunk) and a few MiB (streamed in chunks by the engine), under names that need escaping.

#[path = "../util/mod.rs"]
mod util;

mod check;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use base64::Engine as _;
use util::{Cmd, Run, pseudo_random, stderr_lines, temp_dir, write_file};

/// The sizes of the fixture's files.
const SIZES: [usize; 25] = [
    0,
    1,
    63,
    64,
    65,
    71,
    72,
    73,
    103,
    104,
    105,
    127,
    128,
    129,
    135,
    136,
    137,
    143,
    144,
    145,
    1023,
    1024,
    1025,
    (1 << 20) + 1,
    (3 << 20) + 17,
];

/// Names that GNU escapes (`\`, newline, carriage return) or that parsers trip on.
const AWKWARD: [&[u8]; 7] = [
    b"back\\slash",
    b"new\nline",
    b"carriage\rreturn",
    b" leading space",
    b"tab\tand space",
    b"paren) = x",
    b"trailing\r",
];

/// Writes the fixture into `dir`: one file per size (some under awkward names) and returns the
/// names in the order they are given on command lines.
fn fixture(dir: &Path) -> Vec<Vec<u8>> {
    let mut names = Vec::new();
    for (i, &size) in SIZES.iter().enumerate() {
        let name = match AWKWARD.get(i / 3) {
            Some(awkward) if i % 3 == 1 => awkward.to_vec(),
            _ => format!("f{size:08}").into_bytes(),
        };
        write_file(dir, &name, &pseudo_random(size, i as u64 + 1));
        names.push(name);
    }
    names
}

fn os(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

/// The name as GNU writes it in a checksum line, and whether the line starts with `\`: the
/// rule of coreutils `src/digest.c` (`problematic_chars`, `print_filename`), written out here.
fn gnu_escaped(name: &[u8]) -> (bool, Vec<u8>) {
    if !name.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r')) {
        return (false, name.to_vec());
    }
    let mut out = Vec::new();
    for &b in name {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    (true, out)
}

/// A checksum line as GNU writes it: `<digest>  <name>`, or with a tag `TAG (<name>) = <digest>`.
fn gnu_line(tag: Option<&str>, digest: &str, name: &[u8]) -> Vec<u8> {
    let (escaped, name) = gnu_escaped(name);
    let mut line = Vec::new();
    if escaped {
        line.push(b'\\');
    }
    match tag {
        Some(tag) => {
            line.extend_from_slice(format!("{tag} (").as_bytes());
            line.extend_from_slice(&name);
            line.extend_from_slice(format!(") = {digest}").as_bytes());
        }
        None => {
            line.extend_from_slice(format!("{digest}  ").as_bytes());
            line.extend_from_slice(&name);
        }
    }
    line.push(b'\n');
    line
}

/// `(hex, base64)` of each file, from Python's hashlib and base64. `algorithm` is a hashlib
/// name (`sha3_256`) or `blake2b-BITS`.
fn python_digests(dir: &Path, algorithm: &str, names: &[Vec<u8>]) -> Vec<(String, String)> {
    const SCRIPT: &str = r#"
import base64, hashlib, sys
algorithm = sys.argv[1]
for name in sys.argv[2:]:
    if algorithm.startswith("blake2b-"):
        h = hashlib.blake2b(digest_size=int(algorithm[8:]) // 8)
    else:
        h = hashlib.new(algorithm)
    with open(name, "rb") as f:
        h.update(f.read())
    print(h.hexdigest(), base64.b64encode(h.digest()).decode())
"#;
    let run = Cmd::new("python3")
        .args(["-c", SCRIPT, algorithm])
        .args(names.iter().map(|n| os(n)))
        .dir(dir)
        .run();
    run.code(0);
    String::from_utf8(run.stdout)
        .expect("python prints ASCII")
        .lines()
        .map(|l| {
            let (hex, b64) = l.split_once(' ').expect("two fields");
            (hex.to_owned(), b64.to_owned())
        })
        .collect()
}

/// BLAKE3 of each file, from the blake3 crate.
fn blake3_digests(dir: &Path, names: &[Vec<u8>]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|name| {
            let data = fs::read(dir.join(os(name))).expect("read fixture");
            let hash = blake3::hash(&data);
            let b64 = base64::engine::general_purpose::STANDARD.encode(hash.as_bytes());
            (hash.to_hex().to_string(), b64)
        })
        .collect()
}

fn sumpool_hash(dir: &Path, args: &[&str], names: &[Vec<u8>]) -> Run {
    let run = Cmd::sumpool()
        .arg("hash")
        .args(args)
        .args(names.iter().map(|n| os(n)))
        .dir(dir)
        .run();
    run.code(0).stderr_empty();
    run
}

/// `sumpool hash` and the GNU tool print the same bytes, plain and tagged, for MD5, SHA-1, the
/// SHA-2 lengths and BLAKE2b at three lengths; and `cksum -a` (which tags by default) agrees.
#[test]
fn lines_match_the_gnu_tools() {
    let dir = temp_dir();
    let mut names = fixture(dir.path());
    // GNU writes non-UTF-8 names raw, and so does sumpool.
    write_file(dir.path(), b"\xff\xfe-not-utf8", b"bytes");
    names.push(b"\xff\xfe-not-utf8".to_vec());
    let cases: [(&[&str], &[&str], &[&str]); 10] = [
        (&["-a", "md5"], &["md5sum"], &["-a", "md5"]),
        (&["-a", "sha1"], &["sha1sum"], &["-a", "sha1"]),
        (&["-a", "sha224"], &["sha224sum"], &["-a", "sha224"]),
        (&["-a", "sha256"], &["sha256sum"], &["-a", "sha256"]),
        (&["-a", "sha384"], &["sha384sum"], &["-a", "sha384"]),
        (&["-a", "sha512"], &["sha512sum"], &["-a", "sha512"]),
        (&["-a", "blake2b"], &["b2sum"], &["-a", "blake2b"]),
        (
            &["-a", "blake2b", "-l", "256"],
            &["b2sum", "-l", "256"],
            &["-a", "blake2b", "-l", "256"],
        ),
        (
            &["-a", "blake2b", "-l", "8"],
            &["b2sum", "-l", "8"],
            &["-a", "blake2b", "-l", "8"],
        ),
        // GNU's newer spelling of SHA-2, against the tool of that length.
        (
            &["-a", "sha2", "-l", "384"],
            &["sha384sum"],
            &["-a", "sha384"],
        ),
    ];
    for (ours, tool, cksum) in cases {
        for tag in [false, true] {
            let tag_arg: &[&str] = if tag { &["--tag"] } else { &[] };
            let got = sumpool_hash(dir.path(), &[ours, tag_arg].concat(), &names);
            let gnu = Cmd::new(tool[0])
                .args(&tool[1..])
                .args(tag_arg)
                .args(names.iter().map(|n| os(n)))
                .dir(dir.path())
                .run();
            gnu.code(0);
            got.stdout_is(&gnu.stdout);
            let untagged: &[&str] = if tag { &[] } else { &["--untagged"] };
            let gnu = Cmd::new("cksum")
                .args(cksum)
                .args(untagged)
                .args(names.iter().map(|n| os(n)))
                .dir(dir.path())
                .run();
            gnu.code(0);
            got.stdout_is(&gnu.stdout);
        }
    }
}

/// SHA-3 (as `cksum -a sha3 -l N`, coreutils 9.8: `SHA3-N` tags, untagged with
/// `--untagged`), BLAKE3 (as `b3sum` and `b3sum --tag`) and base64 digests of every algorithm
/// (as `cksum --base64`, padded), against lines built from the references.
#[test]
fn lines_match_the_references_where_gnu_9_1_cannot() {
    let dir = temp_dir();
    let names = fixture(dir.path());
    let cases: [(&[&str], &str, &str); 11] = [
        (&["-a", "sha3", "-l", "224"], "sha3_224", "SHA3-224"),
        (&["-a", "sha3-256"], "sha3_256", "SHA3-256"),
        (&["-a", "sha3", "-l", "384"], "sha3_384", "SHA3-384"),
        (&["-a", "sha3-512"], "sha3_512", "SHA3-512"),
        (&["-a", "blake3"], "blake3", "BLAKE3"),
        (&["-a", "md5"], "md5", "MD5"),
        (&["-a", "sha1"], "sha1", "SHA1"),
        (&["-a", "sha256"], "sha256", "SHA256"),
        (&["-a", "sha512"], "sha512", "SHA512"),
        (&["-a", "blake2b"], "blake2b-512", "BLAKE2b"),
        (
            &["-a", "blake2b", "-l", "136"],
            "blake2b-136",
            "BLAKE2b-136",
        ),
    ];
    for (args, reference, tag) in cases {
        let digests = if reference == "blake3" {
            blake3_digests(dir.path(), &names)
        } else {
            python_digests(dir.path(), reference, &names)
        };
        for (tagged, base64) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut flags = args.to_vec();
            if tagged {
                flags.push("--tag");
            }
            if base64 {
                flags.push("--base64");
            }
            let want: Vec<u8> = names
                .iter()
                .zip(&digests)
                .flat_map(|(name, (hex, b64))| {
                    let digest = if base64 { b64 } else { hex };
                    gnu_line(tagged.then_some(tag), digest, name)
                })
                .collect();
            sumpool_hash(dir.path(), &flags, &names).stdout_is(&want);
        }
    }
}

/// `b3sum`'s lines and sumpool's are the same bytes, plain and `--tag`, and each verifies the
/// other's. Without b3sum (`cargo install b3sum`) the test says so and passes, unless
/// SUMPOOL_REQUIRE_B3SUM is set (`.ci/run` installs it and sets it); the digests are compared
/// with the blake3 crate's in any case.
#[test]
fn blake3_lines_match_b3sum() {
    let installed = std::process::Command::new("b3sum")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("SUMPOOL_REQUIRE_B3SUM").is_none(),
            "b3sum is required but missing"
        );
        eprintln!("b3sum is not installed: compared with the blake3 crate only");
        return;
    }
    let dir = temp_dir();
    let names = fixture(dir.path());
    for tag in [&[][..], &["--tag"][..]] {
        let ours = sumpool_hash(dir.path(), &[&["-a", "blake3"][..], tag].concat(), &names);
        let theirs = Cmd::new("b3sum")
            .args(tag)
            .args(names.iter().map(|n| os(n)))
            .dir(dir.path())
            .run();
        theirs.code(0);
        ours.stdout_is(&theirs.stdout);
        write_file(dir.path(), b"SUMS.b3", &ours.stdout);
        Cmd::new("b3sum")
            .args(["-c", "SUMS.b3"])
            .dir(dir.path())
            .run()
            .code(0);
        Cmd::sumpool()
            .args(["check", "-a", "blake3", "SUMS.b3"])
            .dir(dir.path())
            .run()
            .code(0);
    }
}
