//! The download path against a local HTTP server on 127.0.0.1 serving fixture files:
//! a good file, a wrong checksum, a 404 and a truncated body. Never the internet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mpq_data::fetch::{Catalog, Remote, fetch_catalog};
use mpq_data::sha256_hex;
use std::io::{Read, Write};
use std::net::TcpListener;

/// Serves `routes` (path, status, body, declared length) for a bounded number of requests.
fn serve(routes: Vec<(&'static str, u16, Vec<u8>, usize)>, max_requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max_requests) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let hit = routes.iter().find(|r| path.ends_with(r.0));
            let (status, body, len) = match hit {
                Some((_, st, b, l)) => (*st, b.clone(), *l),
                None => (404, b"not found".to_vec(), 9),
            };
            let head = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}/")
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn catalog(files: [(&'static str, &[u8]); 4]) -> Catalog {
    Catalog {
        name: "fixture",
        mirrors: &[],
        files: files.map(|(n, b)| Remote { name: n, sha256: leak(sha256_hex(b)) }),
    }
}

#[test]
fn good_wrong_checksum_404_truncated() {
    let good = b"good bytes".to_vec();
    let cat = catalog([("a.gz", &good), ("b.gz", b"expected"), ("c.gz", b"missing"), ("d.gz", b"0123456789")]);
    let base = serve(
        vec![
            ("a.gz", 200, good.clone(), good.len()),
            ("b.gz", 200, b"tampered".to_vec(), 8),
            ("d.gz", 200, b"01234".to_vec(), 10),
        ],
        8,
    );
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_catalog(&cat, dir.path(), Some(&[base])).unwrap_err().to_string();
    assert_eq!(std::fs::read(dir.path().join("a.gz")).unwrap(), good, "the good file is kept");
    assert!(err.contains("b.gz: SHA-256 mismatch"), "{err}");
    assert!(err.contains("c.gz") && err.contains("404"), "{err}");
    assert!(err.contains("d.gz"), "{err}");
    assert!(err.contains("place these files there by hand"), "{err}");
    for f in ["b.gz", "c.gz", "d.gz"] {
        assert!(!dir.path().join(f).exists(), "{f} must not be written");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
}

#[test]
fn all_good_then_offline_reuses_files() {
    let files: [(&'static str, &[u8]); 4] = [("a", b"1"), ("b", b"2"), ("c", b"3"), ("d", b"4")];
    let cat = catalog(files);
    let routes = files.iter().map(|(n, b)| (*n, 200, b.to_vec(), b.len())).collect();
    let base = serve(routes, 4);
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(fetch_catalog(&cat, dir.path(), Some(&[base])).unwrap().len(), 4);
    // A closed port stands for "offline": verified files on disk are reused without network.
    let dead = vec!["http://127.0.0.1:9/".to_string()];
    assert_eq!(fetch_catalog(&cat, dir.path(), Some(&dead)).unwrap().len(), 4);
}

#[test]
fn offline_error_lists_files_to_place() {
    let dir = tempfile::tempdir().unwrap();
    let dead = vec!["http://127.0.0.1:9/".to_string()];
    let err = mpq_data::fetch::fetch("mnist", dir.path(), Some(&dead)).unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte.gz  440fcabf"), "{err}");
    assert!(err.contains("t10k-labels-idx1-ubyte.gz"), "{err}");
}
