//! The UICC file system of ETSI TS 102 221 §8: MF, DFs, ADFs and EFs (transparent,
//! linear fixed, cyclic), with file identifiers, short file identifiers, life cycle status
//! and the EF.ARR reference that carries each file's access rules (§9.2.4).
//!
//! Files live in an arena (`Vec<FileNode>`) indexed by [`NodeId`], so the whole tree is one
//! serialisable value: a card persists it as it is, and an eUICC keeps one per profile.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Index of a file in its [`FileSystem`].
pub type NodeId = usize;

/// FID of the master file (TS 102 221 §8.2).
pub const FID_MF: u16 = 0x3F00;
/// Reserved FID meaning "the current application's ADF" (TS 102 221 §8.4.1).
pub const FID_CURRENT_ADF: u16 = 0x7FFF;

/// Life cycle status (TS 102 221 §11.1.1.4.9, ISO 7816-4 Table 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifeCycle {
    /// `05`: operational state, activated.
    Activated,
    /// `04`: operational state, deactivated (TS 102 221 "invalidated").
    Deactivated,
}

/// Where a file's access rules are: record `record` of the EF.ARR with FID `arr_fid`
/// (TS 102 221 §9.2.4, referenced format, tag '8B').
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrRef {
    pub arr_fid: u16,
    pub record: u8,
}

/// What a file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileBody {
    /// MF or DF: children by index. `aid` is set for an ADF (TS 102 221 §8.3).
    Df {
        aid: Option<Vec<u8>>,
        children: Vec<NodeId>,
    },
    /// Transparent EF: a byte string.
    Transparent(Vec<u8>),
    /// Linear fixed EF: records of equal length, numbered from 1.
    LinearFixed {
        record_len: usize,
        records: Vec<Vec<u8>>,
    },
    /// Cyclic EF: `records[0]` is record 1, the most recently written.
    Cyclic {
        record_len: usize,
        records: Vec<Vec<u8>>,
    },
}

/// One file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileNode {
    pub fid: u16,
    pub sfi: Option<u8>,
    pub parent: Option<NodeId>,
    pub life_cycle: LifeCycle,
    pub arr: ArrRef,
    pub body: FileBody,
}

impl FileNode {
    pub fn is_df(&self) -> bool {
        matches!(self.body, FileBody::Df { .. })
    }

    pub fn aid(&self) -> Option<&[u8]> {
        match &self.body {
            FileBody::Df { aid: Some(aid), .. } => Some(aid),
            _ => None,
        }
    }

    /// Records of a record-based EF.
    pub fn records(&self) -> Option<(usize, &Vec<Vec<u8>>)> {
        match &self.body {
            FileBody::LinearFixed {
                record_len,
                records,
            }
            | FileBody::Cyclic {
                record_len,
                records,
            } => Some((*record_len, records)),
            _ => None,
        }
    }
}

/// Why a file system could not be built as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FsError {
    #[error("file {fid:04X}: parent {parent} is not a DF")]
    ParentNotDf { fid: u16, parent: NodeId },
    #[error("file {fid:04X} already exists in that DF")]
    DuplicateFid { fid: u16 },
    #[error("record {index} of {fid:04X} is {got} bytes, the file's record length is {want}")]
    RecordLength {
        fid: u16,
        index: usize,
        got: usize,
        want: usize,
    },
    #[error("no file at path {0}")]
    NoSuchPath(String),
}

/// A tree of files rooted at the MF (node 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSystem {
    nodes: Vec<FileNode>,
}

impl FileSystem {
    /// A file system holding only the MF, whose rules are record `arr_record` of EF.ARR 2F06.
    pub fn new(arr: ArrRef) -> Self {
        let mf = FileNode {
            fid: FID_MF,
            sfi: None,
            parent: None,
            life_cycle: LifeCycle::Activated,
            arr,
            body: FileBody::Df {
                aid: None,
                children: Vec::new(),
            },
        };
        Self { nodes: vec![mf] }
    }

    pub const MF: NodeId = 0;

    pub fn node(&self, id: NodeId) -> Option<&FileNode> {
        self.nodes.get(id)
    }

    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut FileNode> {
        self.nodes.get_mut(id)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a file under `parent`; returns its id.
    pub fn add(&mut self, parent: NodeId, mut node: FileNode) -> Result<NodeId, FsError> {
        if let FileBody::LinearFixed {
            record_len,
            records,
        }
        | FileBody::Cyclic {
            record_len,
            records,
        } = &node.body
        {
            if let Some((index, r)) = records
                .iter()
                .enumerate()
                .find(|(_, r)| r.len() != *record_len)
            {
                return Err(FsError::RecordLength {
                    fid: node.fid,
                    index: index + 1,
                    got: r.len(),
                    want: *record_len,
                });
            }
        }
        if self.child_by_fid(parent, node.fid).is_some() {
            return Err(FsError::DuplicateFid { fid: node.fid });
        }
        let id = self.nodes.len();
        node.parent = Some(parent);
        match self.nodes.get_mut(parent).map(|p| &mut p.body) {
            Some(FileBody::Df { children, .. }) => children.push(id),
            _ => {
                return Err(FsError::ParentNotDf {
                    fid: node.fid,
                    parent,
                })
            }
        }
        self.nodes.push(node);
        Ok(id)
    }

    pub fn children(&self, id: NodeId) -> &[NodeId] {
        match self.nodes.get(id).map(|n| &n.body) {
            Some(FileBody::Df { children, .. }) => children,
            _ => &[],
        }
    }

    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.nodes.get(id).and_then(|n| n.parent)
    }

    pub fn child_by_fid(&self, df: NodeId, fid: u16) -> Option<NodeId> {
        self.children(df)
            .iter()
            .copied()
            .find(|c| self.nodes.get(*c).is_some_and(|n| n.fid == fid))
    }

    pub fn child_by_sfi(&self, df: NodeId, sfi: u8) -> Option<NodeId> {
        self.children(df).iter().copied().find(|c| {
            self.nodes
                .get(*c)
                .is_some_and(|n| n.sfi == Some(sfi) && !n.is_df())
        })
    }

    /// ADFs in creation order (they are children of the MF in this model).
    pub fn adfs(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len()).filter(|id| self.nodes.get(*id).is_some_and(|n| n.aid().is_some()))
    }

    /// The ADFs whose AID starts with `partial` (ISO 7816-4 §7.1.1: right-truncated DF names).
    pub fn adfs_matching<'a>(&'a self, partial: &'a [u8]) -> impl Iterator<Item = NodeId> + 'a {
        self.adfs().filter(move |id| {
            self.nodes
                .get(*id)
                .and_then(|n| n.aid())
                .is_some_and(|a| a.starts_with(partial))
        })
    }

    /// The nearest DF at or above `id` that is an ADF or the MF.
    pub fn application_of(&self, mut id: NodeId) -> NodeId {
        loop {
            match self.nodes.get(id) {
                Some(n) if n.aid().is_some() => return id,
                Some(FileNode {
                    parent: Some(p), ..
                }) => id = *p,
                _ => return Self::MF,
            }
        }
    }

    /// Looks a file up by a path of FIDs, written `3F00/7FFF/6F07` with `ADF` standing for
    /// the first ADF (used by card definitions and tests).
    pub fn find_path(&self, path: &str) -> Result<NodeId, FsError> {
        let mut at = Self::MF;
        for (i, part) in path.split('/').enumerate() {
            let part = part.trim();
            if i == 0 && part.eq_ignore_ascii_case("3F00") {
                continue;
            }
            let next = if part.eq_ignore_ascii_case("ADF") || part.eq_ignore_ascii_case("7FFF") {
                self.adfs().next()
            } else {
                u16::from_str_radix(part, 16)
                    .ok()
                    .and_then(|fid| self.child_by_fid(at, fid))
            };
            at = next.ok_or_else(|| FsError::NoSuchPath(path.to_string()))?;
        }
        Ok(at)
    }

    /// Every file's size in bytes (for FCP '80'/'81').
    pub fn size_of(&self, id: NodeId) -> usize {
        match self.nodes.get(id).map(|n| &n.body) {
            Some(FileBody::Transparent(data)) => data.len(),
            Some(
                FileBody::LinearFixed {
                    record_len,
                    records,
                }
                | FileBody::Cyclic {
                    record_len,
                    records,
                },
            ) => record_len * records.len(),
            Some(FileBody::Df { children, .. }) => children.iter().map(|c| self.size_of(*c)).sum(),
            None => 0,
        }
    }
}

/// Builds file nodes with the defaults most files use.
pub fn ef(fid: u16, sfi: Option<u8>, arr: ArrRef, body: FileBody) -> FileNode {
    FileNode {
        fid,
        sfi,
        parent: None,
        life_cycle: LifeCycle::Activated,
        arr,
        body,
    }
}

/// A DF or ADF node.
pub fn df(fid: u16, aid: Option<Vec<u8>>, arr: ArrRef) -> FileNode {
    FileNode {
        fid,
        sfi: None,
        parent: None,
        life_cycle: LifeCycle::Activated,
        arr,
        body: FileBody::Df {
            aid,
            children: Vec::new(),
        },
    }
}
