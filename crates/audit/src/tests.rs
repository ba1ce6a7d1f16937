//! Known answers from RFC 6962's test leaves (the Certificate Transparency reference
//! vectors; roots and proofs recomputed independently with Python's hashlib), negative cases,
//! and properties over random trees.

use proptest::prelude::*;

use super::*;

/// Bytes 0 to 31: the key of the keyed modules' known-answer vectors (recomputed with Python's
/// `bytes(range(32))`).
pub(crate) const COUNTING_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};

/// The eight test leaves of the CT reference implementation.
fn leaves() -> Vec<Hash> {
    let data: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    data.iter().map(|d| leaf_hash(d)).collect()
}

fn h(s: &str) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(&hex::decode(s).unwrap());
    out
}

fn hs(xs: &[&str]) -> Vec<Hash> {
    xs.iter().map(|x| h(x)).collect()
}

const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn roots_match_the_reference_vectors() {
    let l = leaves();
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    for (n, expected) in ROOTS.iter().enumerate() {
        assert_eq!(hex::encode(root(&l[..=n])), *expected, "size {}", n + 1);
    }
}

#[test]
fn inclusion_proofs_match_and_verify() {
    let l = leaves();
    let cases: &[(usize, usize, &[&str])] = &[
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (index, size, expected) in cases {
        let proof = inclusion_proof(&l[..*size], *index).unwrap();
        assert_eq!(proof, hs(expected), "PATH({index}, {size})");
        verify_inclusion(&l[*index], *index as u64, *size as u64, &proof, &h(ROOTS[size - 1])).unwrap();
    }
}

#[test]
fn consistency_proofs_match_and_verify() {
    let l = leaves();
    let cases: &[(usize, usize, &[&str])] = &[
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            3,
            7,
            &[
                "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
                "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e",
            ],
        ),
        (
            4,
            8,
            &["6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
        ),
    ];
    for (first, second, expected) in cases {
        let proof = consistency_proof(&l[..*second], *first).unwrap();
        assert_eq!(proof, hs(expected), "PROOF({first}, {second})");
        verify_consistency(
            *first as u64,
            *second as u64,
            &proof,
            &h(ROOTS[first - 1]),
            &h(ROOTS[second - 1]),
        )
        .unwrap();
    }
}

#[test]
fn inclusion_negative_cases() {
    let l = leaves();
    let root8 = h(ROOTS[7]);
    let proof = inclusion_proof(&l, 5).unwrap();
    // A modified proof bit.
    let mut bad = proof.clone();
    bad[1][0] ^= 1;
    assert_eq!(
        verify_inclusion(&l[5], 5, 8, &bad, &root8),
        Err(ProofError::RootMismatch)
    );
    // The wrong leaf, the wrong index, the wrong tree size.
    assert!(verify_inclusion(&l[4], 5, 8, &proof, &root8).is_err());
    assert!(verify_inclusion(&l[5], 4, 8, &proof, &root8).is_err());
    // (A size-8 proof with the size-8 root also "verifies" for size 7 when leaf 5's path has the
    // same shape in both trees: the size is authenticated by the signed checkpoint that pairs
    // it with its root, so the check that matters is against the size-7 root.)
    assert!(verify_inclusion(&l[5], 5, 7, &proof, &h(ROOTS[6])).is_err());
    assert!(verify_inclusion(&l[5], 5, 4, &proof, &root8).is_err());
    assert!(verify_inclusion(&l[5], 8, 8, &proof, &root8).is_err());
    // Truncated and extended proofs.
    assert!(verify_inclusion(&l[5], 5, 8, &proof[..2], &root8).is_err());
    let mut longer = proof.clone();
    longer.push(root8);
    assert!(verify_inclusion(&l[5], 5, 8, &longer, &root8).is_err());
    assert!(verify_inclusion(&l[5], 5, 8, &[], &root8).is_err());
    assert!(inclusion_proof(&l, 8).is_err());
}

#[test]
fn consistency_negative_cases_and_forks() {
    let l = leaves();
    let (r3, r7) = (h(ROOTS[2]), h(ROOTS[6]));
    let proof = consistency_proof(&l[..7], 3).unwrap();
    let mut bad = proof.clone();
    bad[0][31] ^= 0x80;
    assert!(verify_consistency(3, 7, &bad, &r3, &r7).is_err());
    assert!(verify_consistency(3, 7, &proof[..proof.len() - 1], &r3, &r7).is_err());
    assert!(
        verify_consistency(4, 7, &proof, &h(ROOTS[3]), &r7).is_err(),
        "wrong first size"
    );
    assert!(
        verify_consistency(3, 8, &proof, &r3, &h(ROOTS[7])).is_err(),
        "wrong second size"
    );
    assert!(verify_consistency(7, 3, &proof, &r7, &r3).is_err());
    assert!(verify_consistency(3, 3, &[], &r3, &r3).is_ok());
    assert!(verify_consistency(3, 3, &[], &r3, &r7).is_err());
    // A fork: a second history that agrees on the first 3 leaves but not the 4th cannot be
    // proven consistent with the first history's size-5 tree.
    let mut fork = l[..7].to_vec();
    fork[3] = leaf_hash(b"rewritten");
    let fork_proof = consistency_proof(&fork, 5).unwrap();
    assert!(verify_consistency(5, 7, &fork_proof, &h(ROOTS[4]), &root(&fork)).is_err());
    assert!(
        verify_consistency(
            5,
            7,
            &consistency_proof(&l[..7], 5).unwrap(),
            &h(ROOTS[4]),
            &root(&fork)
        )
        .is_err()
    );
}

proptest! {
    #[test]
    fn every_proof_of_a_random_tree_verifies(n in 1usize..70, seed in any::<u64>()) {
        let l: Vec<Hash> = (0..n).map(|i| leaf_hash(&(seed ^ i as u64).to_be_bytes())).collect();
        let r = root(&l);
        for i in 0..n {
            let p = inclusion_proof(&l, i).unwrap();
            prop_assert!(verify_inclusion(&l[i], i as u64, n as u64, &p, &r).is_ok());
        }
        for m in 0..=n {
            let p = consistency_proof(&l, m).unwrap();
            prop_assert!(verify_consistency(m as u64, n as u64, &p, &root(&l[..m]), &r).is_ok());
        }
    }

    #[test]
    fn the_compact_range_gives_every_prefix_root(n in 0usize..200) {
        let l: Vec<Hash> = (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect();
        let mut range = CompactRange::default();
        prop_assert_eq!(range.root(), empty_root());
        for (i, leaf) in l.iter().enumerate() {
            range.push(*leaf);
            prop_assert_eq!(range.size(), i as u64 + 1);
            prop_assert_eq!(range.root(), root(&l[..=i]));
        }
    }

    #[test]
    fn the_level_tree_gives_the_same_roots_and_proofs(n in 0usize..150) {
        let l: Vec<Hash> = (0..n).map(|i| leaf_hash(&(i as u64).to_le_bytes())).collect();
        let tree = Tree::new(l.clone());
        prop_assert_eq!(tree.root(), root(&l));
        for i in 0..n {
            prop_assert_eq!(tree.inclusion_proof(i).unwrap(), inclusion_proof(&l, i).unwrap());
        }
        prop_assert!(tree.inclusion_proof(n).is_err());
    }

    #[test]
    fn any_change_to_the_leaves_changes_the_root(n in 1usize..70, at in any::<prop::sample::Index>(), kind in 0u8..3) {
        let l: Vec<Hash> = (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect();
        let r = root(&l);
        let i = at.index(n);
        let mut t = l.clone();
        match kind {
            0 => t[i][0] ^= 1,                                  // an edit
            1 => { t.remove(i); }                               // a deletion
            _ => t.insert(i, leaf_hash(b"inserted")),           // an insertion
        }
        prop_assert_ne!(root(&t), r);
        if n > 1 {
            let mut swapped = l.clone();
            let j = (i + 1) % n;
            swapped.swap(i, j);                                 // a reordering
            prop_assert_ne!(root(&swapped), r);
        }
    }
}
