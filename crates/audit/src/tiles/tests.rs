//! Tile paths from the C2SP examples; proofs from tiles checked against `lib.rs`'s proofs over
//! all leaves (and verified) for random trees past the first full level-1 tile, with every
//! read checked against what storage would hold; the builder against tiles cut from `Tree`.

use std::collections::HashMap;
use std::sync::LazyLock;

use proptest::prelude::*;

use super::*;
use crate::{Tree, consistency_proof, inclusion_proof, leaf_hash, verify_consistency, verify_inclusion};

/// Leaves of the shared tree: past 65,536, so a full level-1 tile and level-2 hashes exist.
const N: u64 = 70_000;

/// Cheap distinct leaf hashes (no SHA-256 per leaf: the trees here are large).
fn leaf(i: u64) -> Hash {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&i.to_be_bytes());
    h[8] = 0xa5;
    h
}

/// What the lead's storage holds for a log of `N` leaves: the leaves, and every full tile the
/// builder emitted (with its root), by (level, index).
struct Store {
    leaves: Vec<Hash>,
    tiles: HashMap<(u8, u64), FullTile>,
}

static STORE: LazyLock<Store> = LazyLock::new(|| {
    let leaves: Vec<Hash> = (0..N).map(leaf).collect();
    let mut builder = TileBuilder::new();
    let mut tiles = HashMap::new();
    for tile in builder.extend(leaves.iter().copied()) {
        let key = (tile.id.level(), tile.id.index());
        assert!(tiles.insert(key, tile).is_none(), "a tile emitted twice");
    }
    Store { leaves, tiles }
});

impl Store {
    /// Answers a read as storage at `stored` leaves would, refusing anything that storage
    /// would not have then (a tile not yet full, edge hashes inside a full tile).
    fn answer(&self, read: &HashRead, stored: u64) -> Vec<Hash> {
        match *read {
            HashRead::Tile(id) => {
                assert!(id.is_full(), "{read:?}");
                assert!(id.index() < full_tiles(id.level(), stored), "{read:?} at {stored}");
                self.tiles[&(id.level(), id.index())].hashes.clone()
            }
            HashRead::Leaves { start, end } => {
                assert!(start >= full_tiles(0, stored) * 256, "{read:?} at {stored}");
                assert!(start < end && end <= stored, "{read:?} at {stored}");
                self.leaves[start as usize..end as usize].to_vec()
            }
            HashRead::Roots { level, start, end } => {
                assert!(start >= full_tiles(level + 1, stored) * 256, "{read:?} at {stored}");
                assert!(start < end && end <= full_tiles(level, stored), "{read:?} at {stored}");
                (start..end).map(|i| self.tiles[&(level, i)].root).collect()
            }
        }
    }

    fn run(&self, plan: &Plan, stored: u64) -> Vec<Hash> {
        let answers: Vec<Vec<Hash>> = plan.reads().iter().map(|r| self.answer(r, stored)).collect();
        plan.assemble(&answers).unwrap()
    }
}

/// At most this many full tiles per tile level for any proof: the one on the path, the one
/// at the right edge.
fn assert_few_reads(plan: &Plan, size: u64) {
    let mut per_level = [0usize; 8];
    let mut edges = [0usize; 8];
    for read in plan.reads() {
        match read {
            HashRead::Tile(id) => per_level[usize::from(id.level())] += 1,
            HashRead::Leaves { .. } => edges[0] += 1,
            HashRead::Roots { level, .. } => edges[usize::from(*level) + 1] += 1,
        }
    }
    assert!(per_level.iter().all(|&n| n <= 2), "{per_level:?} at {size}");
    assert!(edges.iter().all(|&n| n <= 1), "{edges:?} at {size}");
    assert!(plan.reads().len() <= 3 * usize::from(levels(size)).max(1), "{size}");
}

#[test]
fn tile_paths_follow_the_c2sp_examples() {
    let cases: &[(u8, u64, u16, &str)] = &[
        (0, 1_234_067, 256, "tile/0/x001/x234/067"),
        (0, 1234, 256, "tile/0/x001/234"),
        (0, 0, 256, "tile/0/000"),
        (1, 0, 17, "tile/1/000.p/17"),
        (2, 0, 1, "tile/2/000.p/1"),
        (0, 273, 112, "tile/0/273.p/112"),
        (3, 1000, 255, "tile/3/x001/000.p/255"),
        (63, 999, 256, "tile/63/999"),
        (7, u64::MAX, 256, "tile/7/x018/x446/x744/x073/x709/x551/615"),
    ];
    for &(level, index, width, path) in cases {
        let id = TileId::new(level, index, width).unwrap();
        assert_eq!(id.to_string(), path);
        assert_eq!(path.parse::<TileId>().unwrap(), id, "{path}");
    }
}

#[test]
fn non_canonical_tile_paths_are_refused() {
    for path in [
        "",
        "tile",
        "tile/0",
        "tile/0/",
        "tile/00/000",
        "tile/+0/000",
        "tile/64/000",
        "tile/256/000",
        "tile/entries/000",
        "tile/0/0",
        "tile/0/0000",
        "tile/0/+01",
        "tile/0/x000/001",
        "tile/0/001/234",
        "tile/0/x001/x234",
        "tile/0/x01/234",
        "tile/0/000/",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/017",
        "tile/0/000.p/",
        "tile/0/000.p/1/",
        "tile/0/x018/x446/x744/x073/x709/x551/616",
        "tile/0/x001/x018/x446/x744/x073/x709/x551/615",
        "/tile/0/000",
        "tile/0/000 ",
    ] {
        assert!(
            matches!(
                path.parse::<TileId>(),
                Err(TileError::BadPath { .. } | TileError::BadLevel { .. } | TileError::BadWidth { .. })
            ),
            "{path:?}"
        );
    }
    assert_eq!(TileId::new(64, 0, 256), Err(TileError::BadLevel { level: 64 }));
    assert_eq!(TileId::new(0, 0, 0), Err(TileError::BadWidth { width: 0 }));
    assert_eq!(TileId::new(0, 0, 257), Err(TileError::BadWidth { width: 257 }));
}

#[test]
fn the_tiles_of_a_tree_follow_the_c2sp_examples() {
    let t: Vec<TileId> = tiles(70_000).collect();
    let full0 = t.iter().filter(|t| t.level() == 0 && t.is_full()).count();
    assert_eq!(full0, 273);
    let rest: Vec<String> = t[273..].iter().map(ToString::to_string).collect();
    assert_eq!(
        rest,
        ["tile/0/273.p/112", "tile/1/000", "tile/1/001.p/17", "tile/2/000.p/1"]
    );
    // 70,000 >> 8 = 273 hashes at level 1: 256 in tile 0, 17 in tile 1.
    assert_eq!(t[275].index(), 1);
    let t256: Vec<String> = tiles(256).map(|t| t.to_string()).collect();
    assert_eq!(t256, ["tile/0/000", "tile/1/000.p/1"]);
    assert_eq!(tiles(0).count(), 0);
    let t1: Vec<String> = tiles(1).map(|t| t.to_string()).collect();
    assert_eq!(t1, ["tile/0/000.p/1"]);
}

#[test]
fn a_plan_at_ten_million_leaves_reads_a_handful_of_tiles() {
    let n = 10_000_000;
    let plans = [
        Plan::inclusion(0, n, n).unwrap(),
        Plan::inclusion(4_321_987, n, n).unwrap(),
        Plan::inclusion(n - 1, n, n).unwrap(),
        Plan::inclusion(123_456, 9_000_001, n).unwrap(),
        Plan::consistency(1, n, n).unwrap(),
        Plan::consistency(5_000_000, n, n).unwrap(),
        Plan::consistency(n - 1, n, n).unwrap(),
        Plan::consistency(9_999_000, 9_999_999, n).unwrap(),
        Plan::root(n, n).unwrap(),
        Plan::root(7_777_777, n).unwrap(),
    ];
    for plan in &plans {
        assert_few_reads(plan, n);
        let tiles = plan.reads().iter().filter(|r| matches!(r, HashRead::Tile(_))).count();
        assert!(tiles <= 4, "{:?}", plan.reads());
        let hashes: u64 = plan.reads().iter().map(HashRead::len).sum();
        assert!(hashes <= 4 * 256 + 3 * 255, "{hashes} hashes read");
    }
    // Leaf 4,321,987 of 10,000,000: its level-0 tile and its level-1 tile, then the edge
    // (10,000,000 >> 16 = 152 level-2 hashes are all edge).
    let reads = plans[1].reads();
    assert_eq!(reads[0], HashRead::Tile(TileId::full(0, 16_882).unwrap()));
    assert_eq!(reads[1], HashRead::Tile(TileId::full(1, 65).unwrap()));
}

#[test]
fn errors_are_typed() {
    assert_eq!(
        Plan::inclusion(5, 5, 10).unwrap_err(),
        TileError::Proof(ProofError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        Plan::inclusion(0, 0, 0).unwrap_err(),
        TileError::Proof(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        Plan::consistency(6, 5, 10).unwrap_err(),
        TileError::Proof(ProofError::SizesOutOfOrder { first: 6, second: 5 })
    );
    assert_eq!(
        Plan::inclusion(1, 11, 10).unwrap_err(),
        TileError::BeyondStored { size: 11, stored: 10 }
    );
    assert_eq!(
        Plan::consistency(1, 11, 10).unwrap_err(),
        TileError::BeyondStored { size: 11, stored: 10 }
    );
    assert_eq!(
        Plan::root(11, 10).unwrap_err(),
        TileError::BeyondStored { size: 11, stored: 10 }
    );
    assert!(matches!(
        Plan::tile(TileId::new(0, 0, 11).unwrap(), 10),
        Err(TileError::NotInTree { .. })
    ));
    assert!(matches!(
        Plan::tile(TileId::full(0, 0).unwrap(), 255),
        Err(TileError::NotInTree { .. })
    ));
    assert!(matches!(
        Plan::tile(TileId::new(7, u64::MAX, 3).unwrap(), u64::MAX),
        Err(TileError::NotInTree { .. })
    ));
    // Size 0: the root is the empty-tree hash and reads nothing; consistency with it is empty.
    let empty = Plan::root(0, 0).unwrap();
    assert!(empty.reads().is_empty());
    assert_eq!(empty.assemble::<Vec<Hash>>(&[]).unwrap(), [empty_root()]);
    assert!(
        Plan::consistency(0, 0, 0)
            .unwrap()
            .assemble::<Vec<Hash>>(&[])
            .unwrap()
            .is_empty()
    );
    // Answers that do not fit the plan.
    let plan = Plan::inclusion(3, 300, 300).unwrap();
    let mut answers: Vec<Vec<Hash>> = plan.reads().iter().map(|r| STORE.answer(r, 300)).collect();
    assert_eq!(
        plan.assemble(&answers[1..]).unwrap_err(),
        TileError::ReadCount {
            expected: answers.len(),
            got: answers.len() - 1
        }
    );
    answers[0].pop();
    assert!(matches!(
        plan.assemble(&answers),
        Err(TileError::ReadLength {
            read: 0,
            expected: 256,
            got: 255
        })
    ));
    assert_eq!(tile_hashes(&[0u8; 33]), Err(TileError::TileBytes { len: 33 }));
}

#[test]
fn tile_bytes_round_trip() {
    let hashes: Vec<Hash> = (0..256).map(leaf).collect();
    let bytes = tile_bytes(&hashes);
    assert_eq!(bytes.len(), 8192);
    assert_eq!(tile_hashes(&bytes).unwrap(), hashes);
}

#[test]
fn the_builder_cuts_the_tiles_of_the_level_tree_each_once() {
    let leaves = &STORE.leaves;
    let tree = Tree::new(leaves.clone());
    // Every full tile of 70,000 leaves, and nothing else, was emitted (the map refused
    // duplicates when it was filled).
    let expected: Vec<TileId> = tiles(N).filter(TileId::is_full).collect();
    assert_eq!(STORE.tiles.len(), expected.len());
    for id in expected {
        let tile = &STORE.tiles[&(id.level(), id.index())];
        assert_eq!(tile.id, id);
        let level = &tree.levels[usize::from(id.level()) * 8];
        let start = id.index() as usize * 256;
        assert_eq!(tile.hashes, level[start..start + 256], "{id}");
        assert_eq!(
            tile.root,
            tree.levels[usize::from(id.level()) * 8 + 8][id.index() as usize]
        );
        assert_eq!(
            tile.root,
            root(&leaves[start << (8 * id.level())..(start + 256) << (8 * id.level())])
        );
    }
}

#[test]
fn the_builder_emits_tiles_as_they_complete() {
    let mut b = TileBuilder::new();
    assert_eq!(b.root(), empty_root());
    for i in 0..255 {
        assert!(b.push(leaf(i)).is_empty());
    }
    let done = b.push(leaf(255));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, TileId::full(0, 0).unwrap());
    let mut b = TileBuilder::new();
    assert!(b.extend((0..65_535).map(leaf)).len() == 255);
    let done = b.push(leaf(65_535));
    let ids: Vec<String> = done.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, ["tile/0/255", "tile/1/000"]);
    assert_eq!(b.size(), 65_536);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Sizes that matter most sit at tile boundaries: draw some there.
    #[test]
    fn tile_proofs_equal_the_proofs_over_all_leaves(
        stored in prop_oneof![1..=N, (1..=273u64, -3i64..=3).prop_map(|(k, d)| (k * 256).saturating_add_signed(d).clamp(1, N)), Just(65_536u64), Just(N)],
        picks in any::<[prop::sample::Index; 4]>(),
    ) {
        let leaves = &STORE.leaves;
        // A tree size up to the stored one (an older checkpoint), and a leaf and an older
        // size in it.
        let n = if picks[3].index(2) == 0 { stored } else { 1 + picks[0].index(stored as usize) as u64 };
        let index = picks[1].index(n as usize) as u64;
        let m = picks[2].index(n as usize + 1) as u64;
        let all = &leaves[..n as usize];
        let r = root(all);

        let plan = Plan::inclusion(index, n, stored).unwrap();
        assert_few_reads(&plan, stored);
        let proof = STORE.run(&plan, stored);
        prop_assert_eq!(&proof, &inclusion_proof(all, index as usize).unwrap());
        prop_assert!(verify_inclusion(&all[index as usize], index, n, &proof, &r).is_ok());

        let plan = Plan::consistency(m, n, stored).unwrap();
        assert_few_reads(&plan, stored);
        let proof = STORE.run(&plan, stored);
        prop_assert_eq!(&proof, &consistency_proof(all, m as usize).unwrap());
        prop_assert!(verify_consistency(m, n, &proof, &root(&leaves[..m as usize]), &r).is_ok());

        let plan = Plan::root(n, stored).unwrap();
        assert_few_reads(&plan, stored);
        prop_assert_eq!(STORE.run(&plan, stored), vec![r]);
    }

    #[test]
    fn every_proof_of_a_small_tree_equals(stored in 1u64..700, at in any::<prop::sample::Index>()) {
        let n = 1 + at.index(stored as usize) as u64;
        let all = &STORE.leaves[..n as usize];
        for index in 0..n {
            let proof = STORE.run(&Plan::inclusion(index, n, stored).unwrap(), stored);
            prop_assert_eq!(proof, inclusion_proof(all, index as usize).unwrap());
        }
        for m in 0..=n {
            let proof = STORE.run(&Plan::consistency(m, n, stored).unwrap(), stored);
            prop_assert_eq!(proof, consistency_proof(all, m as usize).unwrap());
        }
        prop_assert_eq!(STORE.run(&Plan::root(n, stored).unwrap(), stored), vec![root(all)]);
    }

    #[test]
    fn proof_ranges_hash_to_the_proofs(n in 1usize..300, at in any::<prop::sample::Index>()) {
        let l: Vec<Hash> = (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let i = at.index(n);
        let hashes = |ranges: Vec<Range<u64>>| -> Vec<Hash> {
            ranges.into_iter().map(|r| root(&l[r.start as usize..r.end as usize])).collect()
        };
        prop_assert_eq!(hashes(inclusion_ranges(i as u64, n as u64).unwrap()), inclusion_proof(&l, i).unwrap());
        prop_assert_eq!(hashes(consistency_ranges(i as u64, n as u64).unwrap()), consistency_proof(&l, i).unwrap());
    }

    /// Partial tiles of any older tree size, served from the edge or from the full tile they
    /// have since become, are the level tree's hashes.
    #[test]
    fn tiles_of_older_trees_are_served(stored in 1..=N, at in any::<prop::sample::Index>()) {
        let n = 1 + at.index(stored as usize) as u64;
        let tree = Tree::new(STORE.leaves[..n as usize].to_vec());
        for id in tiles(n).filter(|t| !t.is_full() || t.index() % 37 == 0) {
            let plan = Plan::tile(id, stored).unwrap();
            assert_few_reads(&plan, stored);
            let start = id.index() as usize * 256;
            let level = &tree.levels[usize::from(id.level()) * 8];
            prop_assert_eq!(STORE.run(&plan, stored), level[start..start + usize::from(id.width())].to_vec(), "{}", id);
        }
    }

    #[test]
    fn a_resumed_builder_continues_the_same_tiles(size in 0..N - 300, more in 0u64..300) {
        let reads = edge_reads(size);
        let answers: Vec<Vec<Hash>> = reads.iter().map(|r| STORE.answer(r, size)).collect();
        let mut b = TileBuilder::resume(size, &answers).unwrap();
        prop_assert_eq!(b.size(), size);
        prop_assert_eq!(b.root(), root(&STORE.leaves[..size as usize]));
        // The builder answers a plan's edge reads from memory, as storage would.
        if size > 0 {
            let plan = Plan::inclusion(size / 3, size, size).unwrap();
            for read in plan.reads() {
                if !matches!(read, HashRead::Tile(_)) {
                    prop_assert_eq!(b.read(read).unwrap().to_vec(), STORE.answer(read, size));
                }
            }
        }
        let done = b.extend((size..size + more).map(leaf));
        let expected: Vec<TileId> = new_tiles(size, size + more).filter(TileId::is_full).collect();
        let got: Vec<TileId> = done.iter().map(|t| t.id).collect();
        let mut sorted = got.clone();
        sorted.sort();
        prop_assert_eq!(sorted, expected);
        for t in &done {
            prop_assert_eq!(t, &STORE.tiles[&(t.id.level(), t.id.index())]);
        }
        prop_assert_eq!(b.root(), root(&STORE.leaves[..(size + more) as usize]));
        // A wrong edge is refused.
        if let Some(first) = answers.first() {
            let mut short = answers.clone();
            short[0] = first[1..].to_vec();
            assert!(matches!(TileBuilder::resume(size, &short), Err(TileError::ReadLength { read: 0, .. })));
        }
        prop_assert!(TileBuilder::resume(size + 1, &answers).is_err());
    }

    #[test]
    fn new_tiles_are_those_a_tree_gains(old in 0..N, more in 0u64..2000) {
        let new = old + more;
        let before: std::collections::HashSet<TileId> = tiles(old).collect();
        let gained: Vec<TileId> = tiles(new).filter(|t| !before.contains(t)).collect();
        prop_assert_eq!(new_tiles(old, new).collect::<Vec<_>>(), gained);
    }
}
