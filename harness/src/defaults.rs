//! The shipped defaults, built into the `simlab` binary: the card definitions of
//! `vectors/cards`, the test PKI of `vectors/pki` (GSMA SGP.26 layout) and the GSMA TS.48 profile
//! templates of `vectors/profiles`. Every command uses them unless told otherwise (`--card FILE`,
//! `--pki DIR`, `--templates DIR`), so `simlab` works from any directory and after
//! `cargo install --path harness`.
//!
//! [`Files`] is a directory that is either on disk or one of the built-in ones; the loaders of
//! PKIs ([`crate::pki::Pki::load_from`]) and templates ([`crate::smdp::load_templates`]) read
//! through it. Built-in card definitions read the PKI files they name (`../pki/…`, relative to
//! `vectors/cards`) from the built-in PKI.

use anyhow::Context as _;
use include_dir::{include_dir, Dir};
use simlab_emulator::CardDefinition;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

static CARDS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../vectors/cards");
static PKI: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../vectors/pki");
static PROFILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../vectors/profiles");

/// The built-in card definitions, by name (`--card NAME`): `vectors/cards/NAME.toml`.
pub const CARD_NAMES: [&str; 7] = [
    "uicc",
    "euicc",
    "euicc-test-profile",
    "uicc-2",
    "uicc-3",
    "euicc-2",
    "euicc-3",
];
/// The default UICC (Milenage test set 1).
pub const UICC: &str = "uicc";
/// The default eUICC (test PKI, NIST P-256, no profile).
pub const EUICC: &str = "euicc";

/// One of the built-in directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltIn {
    /// `vectors/cards`.
    Cards,
    /// `vectors/pki`.
    Pki,
    /// `vectors/profiles`.
    Profiles,
}

impl BuiltIn {
    fn dir(self) -> &'static Dir<'static> {
        match self {
            BuiltIn::Cards => &CARDS,
            BuiltIn::Pki => &PKI,
            BuiltIn::Profiles => &PROFILES,
        }
    }

    /// Its path in the source tree, e.g. `vectors/pki`.
    pub fn name(self) -> &'static str {
        match self {
            BuiltIn::Cards => "vectors/cards",
            BuiltIn::Pki => "vectors/pki",
            BuiltIn::Profiles => "vectors/profiles",
        }
    }
}

/// A directory of files: on disk, or built into the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Files {
    Disk(PathBuf),
    BuiltIn(BuiltIn),
}

impl Files {
    /// The built-in test PKI (`vectors/pki`).
    pub fn pki() -> Self {
        Files::BuiltIn(BuiltIn::Pki)
    }

    /// The built-in TS.48 templates (`vectors/profiles`).
    pub fn templates() -> Self {
        Files::BuiltIn(BuiltIn::Profiles)
    }

    /// `dir` when given (a command-line override), else the built-in `default`.
    pub fn or_built_in(dir: Option<&Path>, default: BuiltIn) -> Self {
        dir.map_or(Files::BuiltIn(default), |d| Files::Disk(d.to_owned()))
    }

    /// The directory on disk, if it is one.
    pub fn disk_dir(&self) -> Option<&Path> {
        match self {
            Files::Disk(d) => Some(d),
            Files::BuiltIn(_) => None,
        }
    }

    /// Where `rel` is, for messages: the path on disk, or `vectors/pki/… (built in)`.
    pub fn location(&self, rel: impl AsRef<Path>) -> PathBuf {
        match self {
            Files::Disk(d) => d.join(rel),
            Files::BuiltIn(b) => PathBuf::from(format!(
                "{} (built in)",
                Path::new(b.name()).join(rel).display()
            )),
        }
    }

    /// The file `rel` (relative to this directory).
    pub fn read(&self, rel: impl AsRef<Path>) -> io::Result<Vec<u8>> {
        let rel = rel.as_ref();
        match self {
            Files::Disk(d) => std::fs::read(d.join(rel)),
            Files::BuiltIn(b) => built_in_file(b.dir(), rel)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{} is not a built-in file", self.location(rel).display()),
                    )
                }),
        }
    }

    /// The file `rel`, or `None` when there is no such file.
    pub fn read_optional(&self, rel: impl AsRef<Path>) -> io::Result<Option<Vec<u8>>> {
        match self.read(rel) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The files directly in this directory whose name ends in `.ext`, by name.
    pub fn with_extension(&self, ext: &str) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        match self {
            Files::Disk(d) => {
                for entry in std::fs::read_dir(d)? {
                    let path = entry?.path();
                    if path.extension().is_some_and(|e| e == ext) && path.is_file() {
                        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                            out.push((name.to_owned(), std::fs::read(&path)?));
                        }
                    }
                }
            }
            Files::BuiltIn(b) => {
                for file in b.dir().files() {
                    let path = file.path();
                    if path.extension().is_some_and(|e| e == ext) {
                        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                            out.push((name.to_owned(), file.contents().to_vec()));
                        }
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Writes every file of this directory (subdirectories included) below `out`; returns
    /// the paths written. Refuses to replace a file unless `force`.
    pub fn export(&self, out: &Path, force: bool) -> anyhow::Result<Vec<PathBuf>> {
        let Files::BuiltIn(b) = self else {
            anyhow::bail!("only built-in directories are exported");
        };
        let mut files = Vec::new();
        collect(b.dir(), &mut files);
        let mut written = Vec::new();
        for (rel, bytes) in files {
            let path = out.join(rel);
            if path.exists() && !force {
                anyhow::bail!(
                    "{} exists; pass --force to overwrite it, or choose another --out",
                    path.display()
                );
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }
}

fn collect(dir: &'static Dir<'static>, out: &mut Vec<(&'static Path, &'static [u8])>) {
    for file in dir.files() {
        out.push((file.path(), file.contents()));
    }
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

impl fmt::Display for Files {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Files::Disk(d) => write!(f, "{}", d.display()),
            Files::BuiltIn(b) => write!(f, "{} (built in)", b.name()),
        }
    }
}

impl From<PathBuf> for Files {
    fn from(dir: PathBuf) -> Self {
        Files::Disk(dir)
    }
}

impl From<&Path> for Files {
    fn from(dir: &Path) -> Self {
        Files::Disk(dir.to_owned())
    }
}

impl From<&PathBuf> for Files {
    fn from(dir: &PathBuf) -> Self {
        Files::Disk(dir.clone())
    }
}

/// `rel` inside `dir`, with `.` and `..` resolved lexically (never above `dir`).
fn built_in_file(dir: &'static Dir<'static>, rel: &Path) -> Option<&'static [u8]> {
    let normal = normalise(rel)?;
    dir.get_file(&normal).map(include_dir::File::contents)
}

fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Files of the built-in tree seen from `vectors/` (`cards/…`, `pki/…`, `profiles/…`): how a
/// built-in card definition (base directory `cards`) finds `../pki/eUICC/…`.
fn built_in_vectors_file(path: &Path) -> Option<&'static [u8]> {
    let normal = normalise(path)?;
    let mut parts = normal.components();
    let top = parts.next()?;
    let dir = match top.as_os_str().to_str()? {
        "cards" => BuiltIn::Cards,
        "pki" => BuiltIn::Pki,
        "profiles" => BuiltIn::Profiles,
        _ => return None,
    };
    built_in_file(dir.dir(), parts.as_path())
}

/// The built-in card definition `name` (one of [`CARD_NAMES`]), or `None`.
pub fn card(name: &str) -> Option<CardDefinition> {
    let file = CARDS.get_file(format!("{name}.toml"))?;
    let text = file.contents_utf8()?;
    let mut def = CardDefinition::from_toml(text).ok()?;
    def.base_dir = Some(PathBuf::from("cards"));
    def.built_in_files = Some(built_in_vectors_file);
    Some(def)
}

/// The TOML text of the built-in card `name`.
pub fn card_toml(name: &str) -> Option<&'static str> {
    CARDS.get_file(format!("{name}.toml"))?.contents_utf8()
}

/// A `--card` value: a definition file when one exists at `arg`, else the name of a built-in
/// card (`uicc`, `euicc`).
pub fn card_definition(arg: &Path) -> anyhow::Result<CardDefinition> {
    if arg.exists() {
        return CardDefinition::load(arg)
            .with_context(|| format!("loading card definition {}", arg.display()));
    }
    if let Some(def) = arg.to_str().and_then(card) {
        return Ok(def);
    }
    Err(crate::output::CodedError::new(
        "card-definition",
        format!(
            "card definition {}: no such file, and not a built-in card ({})",
            arg.display(),
            CARD_NAMES.join(", ")
        ),
    )
    .into())
}

/// The built-in CI certificate (NIST P-256, DER): the TLS root the LPA trusts by default.
pub fn ci_certificate() -> anyhow::Result<Vec<u8>> {
    let rel = crate::pki::cert_path(crate::pki::Role::Ci, crate::pki::Curve::Nist);
    Files::pki()
        .read(&rel)
        .with_context(|| format!("built-in CI certificate {}", rel.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[rstest]
    #[case::uicc("uicc")]
    #[case::euicc("euicc")]
    #[case::euicc_test_profile("euicc-test-profile")]
    fn every_built_in_card_builds_the_same_card_as_its_file(#[case] name: &str) {
        let built_in = card(name).unwrap().build().unwrap();
        let on_disk = CardDefinition::load(&repo().join(format!("vectors/cards/{name}.toml")))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(format!("{built_in:?}"), format!("{on_disk:?}"));
    }

    #[test]
    fn the_built_in_names_are_the_shipped_card_files() {
        let mut files: Vec<String> = std::fs::read_dir(repo().join("vectors/cards"))
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(str::to_owned))?
            })
            .collect();
        files.sort();
        let mut names = CARD_NAMES.map(str::to_owned).to_vec();
        names.sort();
        assert_eq!(files, names);
    }

    #[test]
    fn built_in_directories_hold_the_same_files_as_the_source_tree() {
        for (built_in, rel) in [
            (Files::pki(), "vectors/pki"),
            (Files::templates(), "vectors/profiles"),
        ] {
            let disk = Files::Disk(repo().join(rel));
            for ext in ["der", "pem"] {
                assert_eq!(
                    built_in.with_extension(ext).unwrap(),
                    disk.with_extension(ext).unwrap()
                );
            }
        }
        let rel = "eUICC/SK_EUICC_ECDSA_NIST.pem";
        assert_eq!(
            Files::pki().read(rel).unwrap(),
            std::fs::read(repo().join("vectors/pki").join(rel)).unwrap()
        );
    }

    #[rstest]
    #[case::escapes_the_directory("../cards/uicc.toml")]
    #[case::absolute("/etc/passwd")]
    #[case::missing("eUICC/nope.der")]
    fn a_path_outside_or_missing_from_a_built_in_directory_is_not_found(#[case] rel: &str) {
        let e = Files::pki().read(rel).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(Files::pki().read_optional(rel).unwrap(), None);
    }

    #[test]
    fn a_card_argument_is_a_file_first_then_a_built_in_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("uicc");
        std::fs::write(
            &file,
            card_toml("uicc")
                .unwrap()
                .replace("8949001010000000016", "8949001010000000024"),
        )
        .unwrap();
        let from_file = card_definition(&file).unwrap();
        assert_eq!(from_file.card.iccid.as_deref(), Some("8949001010000000024"));
        let built_in = card_definition(Path::new("uicc")).unwrap();
        assert_eq!(built_in.card.iccid.as_deref(), Some("8949001010000000016"));
        let e = card_definition(Path::new("no-such-card")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "card definition no-such-card: no such file, and not a built-in card (uicc, euicc, euicc-test-profile, uicc-2, uicc-3, euicc-2, euicc-3)"
        );
    }

    #[test]
    fn exporting_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let written = Files::pki().export(dir.path(), false).unwrap();
        assert!(written.contains(&dir.path().join("CertificateIssuer/CERT_CI_ECDSA_NIST.der")));
        let e = Files::pki().export(dir.path(), false).unwrap_err();
        assert!(e.to_string().contains("pass --force"), "{e}");
        Files::pki().export(dir.path(), true).unwrap();
    }
}
