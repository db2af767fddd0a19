//! Explicit download of the full MNIST and Fashion-MNIST datasets, the only code in mpq
//! that touches the network. Files are verified against hard-coded SHA-256 sums and
//! written atomically (temporary name, then rename).

use crate::{DataError, Images, idx, sha256_hex};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One file of a fetchable dataset.
#[derive(Debug, Clone, Copy)]
pub struct Remote {
    /// File name, both on the mirror and on disk.
    pub name: &'static str,
    /// Expected SHA-256 (hex).
    pub sha256: &'static str,
}

/// A dataset that `harness fetch` knows how to download.
#[derive(Debug, Clone, Copy)]
pub struct Catalog {
    /// Name used on the command line and in experiment files.
    pub name: &'static str,
    /// Base addresses tried in order.
    pub mirrors: &'static [&'static str],
    /// Train images, train labels, test images, test labels.
    pub files: [Remote; 4],
}

/// The datasets `harness fetch` accepts.
pub const CATALOG: [Catalog; 2] = [
    Catalog {
        name: "mnist",
        mirrors: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        files: [
            Remote {
                name: "train-images-idx3-ubyte.gz",
                sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            },
            Remote {
                name: "train-labels-idx1-ubyte.gz",
                sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            },
            Remote {
                name: "t10k-images-idx3-ubyte.gz",
                sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            },
            Remote {
                name: "t10k-labels-idx1-ubyte.gz",
                sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            },
        ],
    },
    Catalog {
        name: "fashion-mnist",
        mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        files: [
            Remote {
                name: "train-images-idx3-ubyte.gz",
                sha256: "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
            },
            Remote {
                name: "train-labels-idx1-ubyte.gz",
                sha256: "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
            },
            Remote {
                name: "t10k-images-idx3-ubyte.gz",
                sha256: "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
            },
            Remote {
                name: "t10k-labels-idx1-ubyte.gz",
                sha256: "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
            },
        ],
    },
];

/// Looks a dataset up by name.
pub fn catalog(name: &str) -> Result<&'static Catalog, DataError> {
    CATALOG.iter().find(|c| c.name == name).ok_or_else(|| DataError::UnknownDataset(name.to_string()))
}

fn download(url: &str) -> Result<Vec<u8>, String> {
    let agent =
        ureq::Agent::config_builder().timeout_global(Some(std::time::Duration::from_secs(120))).build().new_agent();
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    resp.body_mut().as_reader().read_to_end(&mut out).map_err(|e| format!("reading the body: {e}"))?;
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never
/// leaves a partial file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    mpq_atomic::write(path, bytes).map_err(|cause| DataError::Io { file: path.display().to_string(), cause })
}

/// Downloads every file of `name` missing or wrong in `dir`, from `mirrors` (the catalog's
/// when `None`). Returns the paths written or already good.
pub fn fetch(name: &str, dir: &Path, mirrors: Option<&[String]>) -> Result<Vec<PathBuf>, DataError> {
    fetch_catalog(catalog(name)?, dir, mirrors)
}

/// [`fetch`] for an explicit catalog entry (tests serve fixture files this way).
pub fn fetch_catalog(cat: &Catalog, dir: &Path, mirrors: Option<&[String]>) -> Result<Vec<PathBuf>, DataError> {
    let name = cat.name;
    let bases: Vec<String> = match mirrors {
        Some(m) => m.to_vec(),
        None => cat.mirrors.iter().map(|s| s.to_string()).collect(),
    };
    std::fs::create_dir_all(dir).map_err(|cause| DataError::Io { file: dir.display().to_string(), cause })?;
    let mut done = Vec::new();
    let mut reasons = Vec::new();
    for f in cat.files {
        let path = dir.join(f.name);
        if std::fs::read(&path).map(|b| sha256_hex(&b) == f.sha256).unwrap_or(false) {
            done.push(path);
            continue;
        }
        let mut ok = false;
        for base in &bases {
            let url = format!("{base}{}", f.name);
            match download(&url) {
                Ok(bytes) if sha256_hex(&bytes) == f.sha256 => {
                    write_atomic(&path, &bytes)?;
                    ok = true;
                    break;
                }
                Ok(bytes) => {
                    reasons.push(format!("{url}: SHA-256 mismatch, expected {}, got {}", f.sha256, sha256_hex(&bytes)))
                }
                Err(e) => reasons.push(format!("{url}: {e}")),
            }
        }
        if ok {
            done.push(path);
        }
    }
    if done.len() == cat.files.len() {
        return Ok(done);
    }
    let files = cat.files.iter().map(|f| format!("  {}  {}", f.name, f.sha256)).collect::<Vec<_>>().join("\n");
    Err(DataError::FetchFailed {
        dataset: name.into(),
        dir: dir.display().to_string(),
        files,
        reasons: reasons.join("; "),
    })
}

/// Loads a fetched dataset from `dir`, verifying checksums; returns all examples with the
/// official test examples last, and the index where they start.
pub fn load_fetched(name: &str, dir: &Path) -> Result<(Images, usize), DataError> {
    let cat = catalog(name)?;
    let mut bytes = Vec::new();
    for f in cat.files {
        let path = dir.join(f.name);
        let b = std::fs::read(&path).map_err(|cause| DataError::Io {
            file: format!("{} (run `harness fetch {name}` first)", path.display()),
            cause,
        })?;
        crate::verify_sha256(&path.display().to_string(), &b, f.sha256)?;
        bytes.push((path.display().to_string(), b));
    }
    let part = |i: usize| -> Result<Images, DataError> {
        let (fi, bi) = &bytes[i];
        let (fl, bl) = &bytes[i + 1];
        idx::pair(fi, idx::parse_images(fi, bi)?, fl, idx::parse_labels(fl, bl)?)
    };
    let train = part(0)?;
    let k = train.len();
    Ok((train.concat(part(2)?), k))
}
