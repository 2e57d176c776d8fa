//! Runs the response conformance corpus against `roundtrip_proto::ResponseDecoder`.
//!
//! Reads `../shared/conformance/responses/*.json` and, when
//! `ROUNDTRIP_CONFORMANCE_DIR` is set, every `*.json` below that folder.
//! Each case is fed whole, split at every byte boundary and byte by byte.

use roundtrip_tests::conformance::{check, json_files, load_file, shared_dir};

#[test]
fn conformance_corpus() {
    let mut files = Vec::new();
    let shared = shared_dir();
    if shared.is_dir() {
        files.extend(json_files(&shared));
    } else {
        eprintln!(
            "!!! conformance corpus NOT FOUND at {} — shared cases SKIPPED !!!",
            shared.display()
        );
    }
    if let Ok(dir) = std::env::var("ROUNDTRIP_CONFORMANCE_DIR") {
        let extra = json_files(std::path::Path::new(&dir));
        assert!(
            !extra.is_empty(),
            "ROUNDTRIP_CONFORMANCE_DIR={dir} holds no *.json file"
        );
        files.extend(extra);
    }
    let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    files.extend(json_files(&local));
    assert!(!files.is_empty(), "no conformance case found at all");

    let (mut passed, mut failed) = (0usize, Vec::new());
    let mut ids = std::collections::HashSet::new();
    for file in &files {
        for case in load_file(file).unwrap_or_else(|e| panic!("corpus error: {e}")) {
            assert!(ids.insert(case.id.clone()), "duplicate case id {}", case.id);
            match check(&case) {
                Ok(()) => passed += 1,
                Err(why) => failed.push((case.id.clone(), why)),
            }
        }
    }
    for (id, why) in &failed {
        eprintln!("FAIL {id}: {why}");
    }
    println!("conformance: {passed} passed, {} failed", failed.len());
    eprintln!("conformance: {passed} passed, {} failed", failed.len());
    if !failed.is_empty() {
        let ids: Vec<_> = failed.iter().map(|(id, _)| id.as_str()).collect();
        panic!("conformance failures: {}", ids.join(" "));
    }
}
