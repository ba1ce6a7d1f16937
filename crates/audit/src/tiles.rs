//! Proofs from stored tiles, so that an inclusion or consistency proof reads O(log n) stored
//! hashes instead of every leaf. The layout is C2SP tlog-tiles (the Go checksum database's
//! tiles, height 8): the tile at tile level `L`, index `N` holds the hashes of the tree level
//! `8L` nodes `256N ..= 256N + 255`, each the Merkle Tree Hash of `256^L` leaves. A level-0
//! tile holds leaf hashes; a full level-`L+1` tile holds the roots of 256 full level-`L` tiles.
//!
//! Storage keeps FULL tiles only (they never change once full). What a tree of `n` leaves has
//! outside full tiles is its right edge: at each tile level fewer than 256 hashes (the bytes
//! of `n` in base 256), the leaves after the last full level-0 tile and, above, the roots of
//! the full tiles after the last full tile one level up. Every hash a proof needs is a
//! complete subtree, and a complete subtree of height `8L + r` (r < 8) is `2^r` consecutive
//! hashes of one tile at level `L`, or of the edge at that level: hashing up inside the tile
//! gives it. A proof element that ends at the tree's right edge is several complete subtrees
//! folded the way RFC 6962 splits a tree.
//!
//! The functions are pure so that storage, which is async, stays outside: a [`Plan`] lists
//! what to read ([`HashRead`]), the caller reads it, and [`Plan::assemble`] computes the
//! proof. A plan is made for the size storage covers (`stored`), so that proofs against any
//! older tree size (an older checkpoint) read the same table. [`TileBuilder`] cuts the full
//! tiles as leaves are appended and resumes from what storage has.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::{Hash, ProofError, empty_root, node_hash, root, split};

/// Hashes in a full tile (a subtree of height 8).
pub const TILE_WIDTH: u16 = 256;

/// Bits of tree height per tile level.
const HEIGHT: u32 = 8;

/// The largest level a tile path may name (C2SP tlog-tiles). A tree of 64-bit size has tiles
/// at levels 0 to 7 only.
pub const MAX_TILE_LEVEL: u8 = 63;

/// Why tiles could not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("tree size {size} is beyond the {stored} leaves the stored tiles cover")]
    BeyondStored { size: u64, stored: u64 },
    #[error("not a tile path: {rule}")]
    BadPath { rule: &'static str },
    #[error("a tile level is at most 63 (was {level})")]
    BadLevel { level: u8 },
    #[error("a tile is 1 to 256 hashes wide (was {width})")]
    BadWidth { width: u16 },
    #[error("tile level {level} index {index} width {width} is not part of a tree of {size} leaves")]
    NotInTree {
        level: u8,
        index: u64,
        width: u16,
        size: u64,
    },
    #[error("{got} reads answered, the plan has {expected}")]
    ReadCount { expected: usize, got: usize },
    #[error("read {read} of the plan answered {got} hashes, {expected} expected")]
    ReadLength { read: usize, expected: u64, got: usize },
    #[error("tile bytes are not a whole number of hashes ({len} bytes)")]
    TileBytes { len: usize },
    #[error("the hashes read do not hold a subtree the plan needs")]
    Missing,
}

/// `x >> bits`, 0 when every bit is shifted out (a plain `>>` overflows at 64).
fn shr(x: u64, bits: u32) -> u64 {
    x.checked_shr(bits).unwrap_or(0)
}

/// Complete tree level `8 * level` nodes in a tree of `size` leaves.
fn nodes_at(level: u8, size: u64) -> u64 {
    shr(size, HEIGHT * u32::from(level))
}

/// Full tiles at `level` in a tree of `size` leaves.
fn full_tiles(level: u8, size: u64) -> u64 {
    nodes_at(level, size) >> HEIGHT
}

/// Tile levels a tree of `size` leaves has hashes at (its levels are `0..levels(size)`).
fn levels(size: u64) -> u8 {
    let mut level = 0;
    while nodes_at(level, size) > 0 {
        level += 1;
    }
    level
}

/// A tile: its level, its index within the level and its width (256 for a full tile, 1 to
/// 255 for the partial tile at the right edge of a tree). Ordered by level, then index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    level: u8,
    index: u64,
    width: u16,
}

impl TileId {
    /// A tile of `width` hashes (a full tile is [`TILE_WIDTH`] wide).
    pub fn new(level: u8, index: u64, width: u16) -> Result<Self, TileError> {
        if level > MAX_TILE_LEVEL {
            return Err(TileError::BadLevel { level });
        }
        if width == 0 || width > TILE_WIDTH {
            return Err(TileError::BadWidth { width });
        }
        Ok(Self { level, index, width })
    }

    /// A full tile.
    pub fn full(level: u8, index: u64) -> Result<Self, TileError> {
        Self::new(level, index, TILE_WIDTH)
    }

    /// Levels and widths known to be in range (computed from a tree size).
    fn known(level: u8, index: u64, width: u16) -> Self {
        Self { level, index, width }
    }

    #[must_use]
    pub fn level(&self) -> u8 {
        self.level
    }

    #[must_use]
    pub fn index(&self) -> u64 {
        self.index
    }

    #[must_use]
    pub fn width(&self) -> u16 {
        self.width
    }

    #[must_use]
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }
}

/// The C2SP path, `tile/<L>/<N>[.p/<W>]`: `N` in 3-digit groups, all but the last prefixed
/// with `x` (so a file system can hold the tiles without a directory of a million entries).
impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tile/{}/", self.level)?;
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        for (i, group) in groups.iter().rev().enumerate() {
            if i + 1 == groups.len() {
                write!(f, "{group:03}")?;
            } else {
                write!(f, "x{group:03}/")?;
            }
        }
        if !self.is_full() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

/// Parses a tile path; only the canonical form (the one [`fmt::Display`] writes) is accepted,
/// so one tile has one path (one cache entry, one file).
impl FromStr for TileId {
    type Err = TileError;

    fn from_str(path: &str) -> Result<Self, TileError> {
        let bad = |rule| TileError::BadPath { rule };
        let rest = path.strip_prefix("tile/").ok_or(bad("starts with tile/"))?;
        let (level, rest) = rest.split_once('/').ok_or(bad("has a level"))?;
        let level: u8 = decimal(level).ok_or(bad("the level is a decimal number"))?;
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => (index, decimal(width).ok_or(bad("the width is a decimal number"))?),
            None => (rest, TILE_WIDTH),
        };
        let mut groups = index.split('/').peekable();
        let mut n: u64 = 0;
        while let Some(group) = groups.next() {
            let digits = if groups.peek().is_some() {
                group
                    .strip_prefix('x')
                    .ok_or(bad("every index group but the last starts with x"))?
            } else {
                group
            };
            if digits.len() != 3 {
                return Err(bad("index groups have 3 digits"));
            }
            let g: u64 = decimal(digits).ok_or(bad("index groups have 3 digits"))?;
            n = n
                .checked_mul(1000)
                .and_then(|n| n.checked_add(g))
                .ok_or(bad("the index fits in 64 bits"))?;
        }
        let id = Self::new(level, n, width)?;
        if id.to_string() != path {
            return Err(bad("is canonical (no leading zeros, .p/ only below 256)"));
        }
        Ok(id)
    }
}

/// ASCII digits only (`str::parse` also takes a leading `+`).
fn decimal<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The tiles of a tree of `size` leaves, full and partial, level by level (C2SP: a tree of
/// 70,000 leaves has 273 full level-0 tiles, a level-0 tile of width 112, a full level-1
/// tile, a level-1 tile of width 17 and a level-2 tile of width 1).
pub fn tiles(size: u64) -> impl Iterator<Item = TileId> {
    new_tiles(0, size)
}

/// The tiles a tree of `new` leaves has that a tree of `old` leaves does not have with the
/// same contents: the tiles that became full, and the new partial tiles (Go's
/// `tlog.NewTiles`). Empty unless `old < new`.
pub fn new_tiles(old: u64, new: u64) -> impl Iterator<Item = TileId> {
    (0..levels(new)).flat_map(move |level| {
        let (old_n, new_n) = (nodes_at(level, old), nodes_at(level, new));
        let grew = old_n < new_n;
        let first = if grew { old_n >> HEIGHT } else { 0 };
        let last = if grew { new_n >> HEIGHT } else { 0 };
        let width = (new_n % 256) as u16;
        let partial = (grew && width > 0).then(|| TileId::known(level, last, width));
        (first..last)
            .map(move |index| TileId::known(level, index, TILE_WIDTH))
            .chain(partial)
    })
}

/// One read from storage. The reads a [`Plan`] (or [`edge_reads`]) lists are answered in
/// order, each with its hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashRead {
    /// The 256 hashes of a full tile (a row of the tiles table).
    Tile(TileId),
    /// Leaf hashes `start..end` of the log, all after the last full level-0 tile.
    Leaves { start: u64, end: u64 },
    /// The roots of the full tiles `start..end` at tile level `level`, all after the last
    /// full tile at `level + 1`: the tree level `8 * (level + 1)` nodes `start..end`.
    Roots { level: u8, start: u64, end: u64 },
}

impl HashRead {
    /// How many hashes answer this read.
    #[must_use]
    pub fn len(&self) -> u64 {
        match *self {
            Self::Tile(_) => u64::from(TILE_WIDTH),
            Self::Leaves { start, end } | Self::Roots { start, end, .. } => end - start,
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tile level whose tree level `8L` nodes this read gives, and the first node.
    fn span(&self) -> (u8, u64) {
        match *self {
            Self::Tile(id) => (id.level, id.index << HEIGHT),
            Self::Leaves { start, .. } => (0, start),
            Self::Roots { level, start, .. } => (level.saturating_add(1), start),
        }
    }

    /// The read of the edge hashes `start..end` at tile level `level` (not in a full tile).
    fn edge(level: u8, start: u64, end: u64) -> Self {
        match level.checked_sub(1) {
            None => Self::Leaves { start, end },
            Some(below) => Self::Roots {
                level: below,
                start,
                end,
            },
        }
    }
}

/// The reads that give a tree of `size` leaves' right edge: at each tile level the hashes
/// after the last full tile (the state [`TileBuilder::resume`] takes).
#[must_use]
pub fn edge_reads(size: u64) -> Vec<HashRead> {
    (0..levels(size))
        .filter_map(|level| {
            let end = nodes_at(level, size);
            let start = end & !0xff;
            (start < end).then(|| HashRead::edge(level, start, end))
        })
        .collect()
}

/// The RFC 6962 inclusion proof of leaf `index` in a tree of `size` leaves, as the leaf
/// ranges whose Merkle Tree Hashes it lists (the recursion of `PATH`).
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<Range<u64>>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::new();
    path_ranges(0..size, index, &mut out);
    Ok(out)
}

fn path_ranges(range: Range<u64>, m: u64, out: &mut Vec<Range<u64>>) {
    let n = range.end - range.start;
    if n <= 1 {
        return;
    }
    let mid = range.start + split(n);
    if m < mid {
        path_ranges(range.start..mid, m, out);
        out.push(mid..range.end);
    } else {
        path_ranges(mid..range.end, m, out);
        out.push(range.start..mid);
    }
}

/// The RFC 6962 consistency proof between the trees of `first` and `second` leaves, as leaf
/// ranges (the recursion of `PROOF`/`SUBPROOF`).
pub fn consistency_ranges(first: u64, second: u64) -> Result<Vec<Range<u64>>, ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    let mut out = Vec::new();
    if first > 0 && first < second {
        subproof_ranges(0..second, first, true, &mut out);
    }
    Ok(out)
}

fn subproof_ranges(range: Range<u64>, m: u64, whole: bool, out: &mut Vec<Range<u64>>) {
    if m == range.end {
        if !whole {
            out.push(range);
        }
        return;
    }
    let mid = range.start + split(range.end - range.start);
    if m <= mid {
        subproof_ranges(range.start..mid, m, whole, out);
        out.push(mid..range.end);
    } else {
        subproof_ranges(mid..range.end, m, false, out);
        out.push(range.start..mid);
    }
}

/// A complete subtree: `2^height` leaves from `index << height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    height: u32,
    index: u64,
}

impl Node {
    /// Where its hash comes from: tile level, first tree level `8L` node, how many (a power
    /// of two below 256, all in one tile since they are aligned).
    fn base(self) -> (u8, u64, u64) {
        let level = (self.height / HEIGHT) as u8;
        let r = self.height % HEIGHT;
        (level, self.index << r, 1 << r)
    }
}

/// A range of RFC 6962's tree as complete subtrees, largest first: its size in binary. Every
/// node of the tree starts at a multiple of the power of two at or above its size, so each
/// piece is aligned; the range's hash folds them from the right (`root` splits the same way).
fn pieces(range: &Range<u64>) -> Vec<Node> {
    let mut out = Vec::new();
    let mut at = range.start;
    let len = range.end - range.start;
    for height in (0..64).rev() {
        if (len >> height) & 1 == 1 {
            out.push(Node {
                height,
                index: at >> height,
            });
            at += 1 << height;
        }
    }
    out
}

/// What to read for a proof (or a root, or a tile's contents) and how to compute it from
/// what was read. Made for the tree size storage covers, `stored`: the full tiles of a tree
/// of `stored` leaves and its right edge ([`edge_reads`]).
#[derive(Debug, Clone)]
pub struct Plan {
    reads: Vec<HashRead>,
    /// Each output hash: complete subtrees folded from the right.
    outputs: Vec<Vec<Node>>,
}

impl Plan {
    /// The inclusion proof of leaf `index` in the tree of `size` leaves (`size <= stored`).
    pub fn inclusion(index: u64, size: u64, stored: u64) -> Result<Self, TileError> {
        check_stored(size, stored)?;
        Ok(Self::of_ranges(&inclusion_ranges(index, size)?, stored))
    }

    /// The consistency proof between the trees of `first` and `second` leaves
    /// (`second <= stored`).
    pub fn consistency(first: u64, second: u64, stored: u64) -> Result<Self, TileError> {
        check_stored(second, stored)?;
        Ok(Self::of_ranges(&consistency_ranges(first, second)?, stored))
    }

    /// The root of the tree of `size` leaves (`size <= stored`); the empty-tree hash for 0.
    pub fn root(size: u64, stored: u64) -> Result<Self, TileError> {
        check_stored(size, stored)?;
        Ok(Self::of_nodes(vec![pieces(&(0..size))], stored))
    }

    /// The hashes of a tile, full or partial, of the tree of `stored` leaves: what a C2SP
    /// client fetches at the tile's path (a partial tile is cut from the edge, or from the
    /// full tile it has since become).
    pub fn tile(tile: TileId, stored: u64) -> Result<Self, TileError> {
        let start = tile.index.checked_mul(256);
        let end = start.and_then(|s| s.checked_add(u64::from(tile.width)));
        match (start, end) {
            (Some(start), Some(end)) if end <= nodes_at(tile.level, stored) => {
                let height = HEIGHT * u32::from(tile.level);
                let nodes = (start..end).map(|index| vec![Node { height, index }]);
                Ok(Self::of_nodes(nodes.collect(), stored))
            }
            _ => Err(TileError::NotInTree {
                level: tile.level,
                index: tile.index,
                width: tile.width,
                size: stored,
            }),
        }
    }

    fn of_ranges(ranges: &[Range<u64>], stored: u64) -> Self {
        Self::of_nodes(ranges.iter().map(pieces).collect(), stored)
    }

    /// Every node from a full tile of the stored tree if it lies in one, otherwise from the
    /// edge at its level (one read per level, spanning what is needed there).
    fn of_nodes(outputs: Vec<Vec<Node>>, stored: u64) -> Self {
        let mut tiles = BTreeSet::new();
        let mut edge: BTreeMap<u8, Range<u64>> = BTreeMap::new();
        for node in outputs.iter().flatten() {
            let (level, first, count) = node.base();
            let tile = first >> HEIGHT;
            if tile < full_tiles(level, stored) {
                tiles.insert(TileId::known(level, tile, TILE_WIDTH));
            } else {
                let span = edge.entry(level).or_insert(first..first + count);
                span.start = span.start.min(first);
                span.end = span.end.max(first + count);
            }
        }
        let reads = tiles
            .into_iter()
            .map(HashRead::Tile)
            .chain(
                edge.into_iter()
                    .map(|(level, span)| HashRead::edge(level, span.start, span.end)),
            )
            .collect();
        Self { reads, outputs }
    }

    /// What to read, in order; [`Plan::assemble`] takes the answers in the same order.
    #[must_use]
    pub fn reads(&self) -> &[HashRead] {
        &self.reads
    }

    /// Computes the proof (or the root as one hash, or the tile's hashes) from the answers to
    /// [`Plan::reads`], one per read in order. The hashes are those `inclusion_proof`,
    /// `consistency_proof` and `root` compute over all leaves.
    pub fn assemble<H: AsRef<[Hash]>>(&self, answers: &[H]) -> Result<Vec<Hash>, TileError> {
        if answers.len() != self.reads.len() {
            return Err(TileError::ReadCount {
                expected: self.reads.len(),
                got: answers.len(),
            });
        }
        let mut sources = Vec::with_capacity(self.reads.len());
        for (i, (read, answer)) in self.reads.iter().zip(answers).enumerate() {
            let hashes = answer.as_ref();
            if hashes.len() as u64 != read.len() {
                return Err(TileError::ReadLength {
                    read: i,
                    expected: read.len(),
                    got: hashes.len(),
                });
            }
            let (level, first) = read.span();
            sources.push((level, first, hashes));
        }
        self.outputs
            .iter()
            .map(|nodes| {
                let mut acc: Option<Hash> = None;
                for node in nodes.iter().rev() {
                    let h = subtree(&sources, *node)?;
                    acc = Some(match acc {
                        None => h,
                        Some(right) => node_hash(&h, &right),
                    });
                }
                Ok(acc.unwrap_or_else(empty_root))
            })
            .collect()
    }
}

fn check_stored(size: u64, stored: u64) -> Result<(), TileError> {
    if size > stored {
        return Err(TileError::BeyondStored { size, stored });
    }
    Ok(())
}

/// A complete subtree's hash: its `2^r` hashes at its tile level, hashed up.
fn subtree(sources: &[(u8, u64, &[Hash])], node: Node) -> Result<Hash, TileError> {
    let (level, first, count) = node.base();
    for &(l, start, hashes) in sources {
        if l == level && first >= start && first + count <= start + hashes.len() as u64 {
            let at = (first - start) as usize;
            return Ok(root(&hashes[at..at + count as usize]));
        }
    }
    Err(TileError::Missing)
}

/// A full tile as it is stored: its id, its 256 hashes and its root (the hash of the tree
/// level `8 * (level + 1)` node it spans, which is a hash of the tile one level up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullTile {
    pub id: TileId,
    pub hashes: Vec<Hash>,
    pub root: Hash,
}

/// Hashes as a tile's bytes (stored, and served to C2SP clients): concatenated.
#[must_use]
pub fn tile_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

/// A tile's bytes as hashes.
pub fn tile_hashes(bytes: &[u8]) -> Result<Vec<Hash>, TileError> {
    let chunks = bytes.chunks_exact(32);
    if !chunks.remainder().is_empty() {
        return Err(TileError::TileBytes { len: bytes.len() });
    }
    Ok(chunks
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// Cuts full tiles as leaves are appended, at every level, each exactly once when it
/// completes. Its state is the tree's right edge (fewer than 256 hashes per level, at most 8
/// levels), which is what storage has outside full tiles: a restarted server resumes from
/// [`edge_reads`] without reading the log.
#[derive(Debug, Clone, Default)]
pub struct TileBuilder {
    size: u64,
    /// `edge[L]`: the tree level `8L` nodes after the last full level-`L` tile.
    edge: Vec<Vec<Hash>>,
}

impl TileBuilder {
    /// A builder for an empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder for a tree of `size` leaves, from the answers to [`edge_reads`]`(size)` in
    /// order. The tiles table must hold the full tiles of exactly that tree (tiles written in
    /// the transaction that appends the leaves completing them).
    pub fn resume<H: AsRef<[Hash]>>(size: u64, answers: &[H]) -> Result<Self, TileError> {
        let reads = edge_reads(size);
        if answers.len() != reads.len() {
            return Err(TileError::ReadCount {
                expected: reads.len(),
                got: answers.len(),
            });
        }
        let mut edge = vec![Vec::new(); usize::from(levels(size))];
        for (i, (read, answer)) in reads.iter().zip(answers).enumerate() {
            let hashes = answer.as_ref();
            if hashes.len() as u64 != read.len() {
                return Err(TileError::ReadLength {
                    read: i,
                    expected: read.len(),
                    got: hashes.len(),
                });
            }
            let (level, _) = read.span();
            edge[usize::from(level)] = hashes.to_vec();
        }
        Ok(Self { size, edge })
    }

    /// Leaves so far.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash; returns the tiles it completes, lowest level first (none for
    /// 255 leaves in 256).
    pub fn push(&mut self, leaf: Hash) -> Vec<FullTile> {
        let mut done = Vec::new();
        self.size += 1;
        let mut carry = leaf;
        for level in 0u8.. {
            let l = usize::from(level);
            if self.edge.len() <= l {
                self.edge.push(Vec::new());
            }
            self.edge[l].push(carry);
            if self.edge[l].len() < usize::from(TILE_WIDTH) {
                break;
            }
            let hashes = std::mem::take(&mut self.edge[l]);
            let tile_root = root(&hashes);
            done.push(FullTile {
                id: TileId::known(level, full_tiles(level, self.size) - 1, TILE_WIDTH),
                hashes,
                root: tile_root,
            });
            carry = tile_root;
        }
        done
    }

    /// Appends leaf hashes in order; returns the tiles they complete, in order.
    pub fn extend(&mut self, leaves: impl IntoIterator<Item = Hash>) -> Vec<FullTile> {
        leaves.into_iter().flat_map(|leaf| self.push(leaf)).collect()
    }

    /// The root of the tree so far, from the edge alone.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut pieces = Vec::new();
        for hashes in self.edge.iter().rev() {
            let mut at = 0;
            for r in (0..HEIGHT).rev() {
                let count = 1usize << r;
                if hashes.len() & count != 0 {
                    pieces.push(root(&hashes[at..at + count]));
                    at += count;
                }
            }
        }
        let mut iter = pieces.into_iter().rev();
        let Some(mut acc) = iter.next() else {
            return empty_root();
        };
        for left in iter {
            acc = node_hash(&left, &acc);
        }
        acc
    }

    /// Answers a read of the edge from memory when it lies in this builder's edge (a plan
    /// made for this builder's size always does), so the writer need not read it back.
    #[must_use]
    pub fn read(&self, read: &HashRead) -> Option<&[Hash]> {
        if let HashRead::Tile(_) = read {
            return None;
        }
        let (level, first) = read.span();
        let hashes = self.edge.get(usize::from(level))?;
        let start = nodes_at(level, self.size) & !0xff;
        let from = usize::try_from(first.checked_sub(start)?).ok()?;
        let to = from.checked_add(usize::try_from(read.len()).ok()?)?;
        hashes.get(from..to)
    }
}

#[cfg(test)]
mod tests;
