//! Fuzzing as plain tests (issue 17): proptest over arbitrary input and over mutations of
//! valid values made here, for everything the audit log reads from outside: signed notes,
//! verifier keys, checkpoints, witness `add-checkpoint` requests, tile paths and tile bytes,
//! and the numbers and hashes of proofs. Each must be refused with a typed error or read
//! back exactly as written; a mutated signed note must never verify as another text.
//!
//! The case counts keep the run short in CI; `PROPTEST_CASES=20000 cargo test -p
//! custodia-audit fuzz` fuzzes longer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::note::{COSIGNATURE_TYPE, Checkpoint, ED25519_TYPE, Note, NoteSigner, VerifierKey};
use crate::tiles::{MAX_TILE_LEVEL, TILE_WIDTH, edge_reads, tile_bytes, tile_hashes};
use crate::witness::{AddCheckpoint, Witnessed, add_checkpoint};
use crate::{
    CompactRange, Hash, Plan, TileBuilder, TileError, TileId, consistency_proof, leaf_hash, verify_consistency,
    verify_inclusion,
};

/// Cases per property: `default`, or `PROPTEST_CASES` when it is set.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        ..ProptestConfig::default()
    }
}

/// One change to a text (by character, so that the result stays UTF-8).
#[derive(Debug, Clone)]
enum Edit {
    /// Replace one character.
    Replace(Index, char),
    /// Remove a run of characters.
    Remove(Index, usize),
    /// Insert text.
    Insert(Index, String),
    /// Copy a line to another place.
    DuplicateLine(Index, Index),
    /// Exchange two lines.
    SwapLines(Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let inserted = prop_oneof![
        prop::sample::select(vec![
            "\n",
            "\n\n",
            " ",
            "\u{2014} ",
            "+",
            "=",
            "0",
            "\r",
            "\u{0}",
            "\u{2014}"
        ])
        .prop_map(str::to_owned),
        "[A-Za-z0-9+/=\\n ]{1,6}",
        any::<String>(),
    ];
    prop_oneof![
        4 => (any::<Index>(), prop_oneof![any::<char>(), "[A-Za-z0-9+/=\\n ]".prop_map(|s| s.chars().next().unwrap_or('a'))])
            .prop_map(|(i, c)| Edit::Replace(i, c)),
        2 => (any::<Index>(), 1usize..12).prop_map(|(i, n)| Edit::Remove(i, n)),
        2 => (any::<Index>(), inserted).prop_map(|(i, s)| Edit::Insert(i, s)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::DuplicateLine(a, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(edit(), 1..=3)
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut text = text.to_owned();
    for edit in edits {
        let mut chars: Vec<char> = text.chars().collect();
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        text = match edit {
            Edit::Replace(i, c) if !chars.is_empty() => {
                let at = i.index(chars.len());
                chars[at] = *c;
                chars.into_iter().collect()
            }
            Edit::Replace(..) => text,
            Edit::Remove(i, n) => {
                let at = i.index(chars.len() + 1);
                let end = (at + n).min(chars.len());
                chars.drain(at..end);
                chars.into_iter().collect()
            }
            Edit::Insert(i, s) => {
                let at = i.index(chars.len() + 1);
                chars.splice(at..at, s.chars());
                chars.into_iter().collect()
            }
            Edit::DuplicateLine(a, b) => {
                let copy = lines[a.index(lines.len())].clone();
                let at = b.index(lines.len() + 1);
                lines.insert(at, copy);
                lines.join("\n")
            }
            Edit::SwapLines(a, b) => {
                let n = lines.len();
                lines.swap(a.index(n), b.index(n));
                lines.join("\n")
            }
        };
    }
    text
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>()
}

/// Sizes with the edges of `u64` and of tiles well represented.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..600,
        any::<u64>(),
        (0u32..64).prop_map(|b| 1u64 << b),
        (0u32..64, -2i64..=2).prop_map(|(b, d)| (1u64 << b).wrapping_add_signed(d)),
        Just(u64::MAX),
        Just(u64::MAX - 1),
    ]
}

fn log() -> NoteSigner {
    NoteSigner::from_seed("custodia-audit", ED25519_TYPE, &[1; 32]).unwrap()
}

fn witness() -> NoteSigner {
    NoteSigner::from_seed("witness.example", COSIGNATURE_TYPE, &[2; 32]).unwrap()
}

fn leaves(n: u64, salt: u8) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&[&[salt][..], &i.to_be_bytes()].concat()))
        .collect()
}

fn root_of(leaves: &[Hash]) -> Hash {
    let mut range = CompactRange::default();
    leaves.iter().for_each(|l| range.push(*l));
    range.root()
}

/// Text shaped like a signed note: a few lines, a blank line, signature lines (any name,
/// any base64), so that the parser's later branches are reached.
fn note_like() -> impl Strategy<Value = String> {
    let text_line = prop_oneof!["[ -~]{1,20}", "[0-9]{1,20}", "[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]="];
    let sig_line = (
        prop_oneof!["[!-~]{1,12}", Just("custodia-audit".to_owned()), any::<String>()],
        proptest::collection::vec(any::<u8>(), 0..80),
        prop_oneof![Just("\u{2014} "), Just("- "), Just("\u{2014}")],
    )
        .prop_map(|(name, bytes, dash)| format!("{dash}{name} {}", B64.encode(bytes)));
    (
        proptest::collection::vec(text_line, 0..5),
        proptest::collection::vec(sig_line, 0..4),
    )
        .prop_map(|(text, sigs)| {
            let mut out = String::new();
            for l in text {
                out.push_str(&l);
                out.push('\n');
            }
            out.push('\n');
            for s in sigs {
                out.push_str(&s);
                out.push('\n');
            }
            out
        })
}

/// A checkpoint as the log signs it, cosigned by the witness at time 7.
fn cosigned(size: u64, root: Hash) -> (Checkpoint, Note) {
    let checkpoint = Checkpoint::new("custodia-audit", size, root);
    let mut note = log().sign(&checkpoint.text()).unwrap();
    witness().cosign(&mut note, 7).unwrap();
    (checkpoint, note)
}

proptest! {
    #![proptest_config(config(256))]

    /// Signed notes: arbitrary text, and text shaped like a note, is refused with a typed
    /// error or read as a note that writes back exactly as the text it came from (so one note
    /// has one text, whatever was signed).
    #[test]
    fn notes_are_read_exactly_or_refused(text in prop_oneof![any::<String>(), note_like()]) {
        if let Ok(note) = Note::parse(&text) {
            prop_assert_eq!(note.to_text(), text);
        }
    }

    /// A signed and cosigned checkpoint verifies, and every mutation of it (characters
    /// replaced, removed or inserted, lines duplicated or swapped) is refused or verifies
    /// only with the very text and cosignature time that were signed.
    #[test]
    fn mutated_notes_never_verify_as_another_text(
        size in size(),
        root in hash(),
        changes in edits(),
    ) {
        let (checkpoint, note) = cosigned(size, root);
        let (log, witness) = (log(), witness());
        let text = note.to_text();
        let back = Note::parse(&text).unwrap();
        prop_assert_eq!(log.verifier().verify(&back), Ok(None));
        prop_assert_eq!(witness.verifier().verify(&back), Ok(Some(7)));
        prop_assert_eq!(Checkpoint::parse(back.text()), Ok(checkpoint.clone()));

        let changed = apply(&text, &changes);
        if let Ok(note) = Note::parse(&changed) {
            if log.verifier().verify(&note).is_ok() {
                prop_assert_eq!(note.text(), checkpoint.text());
            }
            if let Ok(time) = witness.verifier().verify(&note) {
                prop_assert_eq!(note.text(), checkpoint.text());
                prop_assert_eq!(time, Some(7));
            }
        }
    }

    /// Verifier keys: arbitrary text is refused or read as a key that writes back as text
    /// reading the same key; a mutated valid key is refused or is the same key.
    #[test]
    fn verifier_keys_parse_strictly(
        text in prop_oneof![any::<String>(), "[!-~]{1,10}\\+[0-9a-fA-F]{8}\\+[A-Za-z0-9+/]{44}"],
        seed in any::<[u8; 32]>(),
        cosigner in any::<bool>(),
        changes in edits(),
    ) {
        if let Ok(key) = VerifierKey::parse(&text) {
            prop_assert_eq!(VerifierKey::parse(&key.to_string()), Ok(key));
        }
        let kind = if cosigner { COSIGNATURE_TYPE } else { ED25519_TYPE };
        let key = NoteSigner::from_seed("witness.example", kind, &seed).unwrap().verifier().clone();
        let written = key.to_string();
        prop_assert_eq!(VerifierKey::parse(&written), Ok(key.clone()));
        if let Ok(other) = VerifierKey::parse(&apply(&written, &changes)) {
            prop_assert_eq!(other, key);
        }
    }

    /// Checkpoints: arbitrary text is refused or read as a checkpoint that writes back as the
    /// same text; every checkpoint the log writes reads back as itself.
    #[test]
    fn checkpoints_are_read_exactly_or_refused(
        text in prop_oneof![
            any::<String>(),
            ("[ -~]{0,12}", "[0-9+-]{0,21}", prop_oneof![hash().prop_map(|h| B64.encode(h)), "[A-Za-z0-9+/=]{0,46}"],
             proptest::collection::vec("[ -~]{0,8}", 0..3))
                .prop_map(|(o, s, r, ext)| format!("{o}\n{s}\n{r}\n{}", ext.iter().map(|e| format!("{e}\n")).collect::<String>())),
        ],
        origin in "[!-~][ -~]{0,20}",
        size in size(),
        root in hash(),
        extensions in proptest::collection::vec("[ -~]{1,20}", 0..3),
    ) {
        if let Ok(checkpoint) = Checkpoint::parse(&text) {
            prop_assert_eq!(checkpoint.text(), text);
        }
        let checkpoint = Checkpoint { extensions, ..Checkpoint::new(&origin, size, root) };
        prop_assert_eq!(Checkpoint::parse(&checkpoint.text()), Ok(checkpoint));
    }

    /// Witness requests: arbitrary bodies are refused with a typed error or read as a
    /// request that writes back as the same body.
    #[test]
    fn witness_requests_are_read_exactly_or_refused(
        body in prop_oneof![
            any::<String>(),
            ("[0-9+ -]{0,21}", proptest::collection::vec(prop_oneof![hash().prop_map(|h| B64.encode(h)), "[A-Za-z0-9+/=]{0,46}"], 0..4), "[ -~\\n]{0,30}")
                .prop_map(|(old, proof, note)| format!("old {old}\n{}\n{note}", proof.iter().map(|p| format!("{p}\n")).collect::<String>())),
        ],
    ) {
        if let Ok(request) = AddCheckpoint::parse(&body) {
            prop_assert_eq!(request.to_text(), body);
        }
    }

    /// The witness decides mutated `add-checkpoint` requests without a panic, and cosigns
    /// only the tree the log signed, and only when it extends the one the witness holds.
    #[test]
    fn witness_cosigns_only_what_the_log_signed(
        (old, new) in (0u64..300).prop_flat_map(|old| (Just(old), old..300)),
        changes in edits(),
    ) {
        let all = leaves(new, 0);
        let (log, witness) = (log(), witness());
        let (_, old_note) = cosigned(old, root_of(&all[..old as usize]));
        let latest = (old > 0).then(|| Witnessed { size: old, root: root_of(&all[..old as usize]), note: old_note.to_text() });
        let request = AddCheckpoint {
            old_size: old,
            proof: if old == 0 { Vec::new() } else { consistency_proof(&all, old as usize).unwrap() },
            note: log.sign(&Checkpoint::new("custodia-audit", new, root_of(&all)).text()).unwrap().to_text(),
        };
        let body = request.to_text();
        prop_assert_eq!(AddCheckpoint::parse(&body), Ok(request.clone()));
        let (state, _) = add_checkpoint(log.verifier(), latest.as_ref(), &request, &witness, 9).unwrap();
        prop_assert_eq!((state.size, state.root), (new, root_of(&all)));

        let changed = apply(&body, &changes);
        if let Ok(request) = AddCheckpoint::parse(&changed)
            && let Ok((state, line)) = add_checkpoint(log.verifier(), latest.as_ref(), &request, &witness, 9)
        {
            prop_assert_eq!((state.size, state.root), (new, root_of(&all)));
            prop_assert!(line.starts_with("\u{2014} witness.example "), "{}", line);
        }
    }

    /// Tile paths: arbitrary text is refused or read as a tile whose path is that text (one
    /// tile, one path); every tile's path reads back as the tile.
    #[test]
    fn tile_paths_are_canonical(
        path in prop_oneof![
            any::<String>(),
            "tile/[0-9]{1,3}/(x[0-9]{3}/){0,7}[0-9]{1,4}(\\.p/[0-9]{1,3})?",
        ],
        level in 0u8..=MAX_TILE_LEVEL,
        index in prop_oneof![any::<u64>(), 0u64..2000],
        width in 1u16..=TILE_WIDTH,
    ) {
        if let Ok(tile) = path.parse::<TileId>() {
            prop_assert_eq!(tile.to_string(), path);
        }
        let tile = TileId::new(level, index, width).unwrap();
        prop_assert_eq!(tile.to_string().parse::<TileId>(), Ok(tile));
    }

    /// Tile bytes: whole hashes are read back exactly, anything else is refused.
    #[test]
    fn tile_bytes_are_whole_hashes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        match tile_hashes(&bytes) {
            Ok(hashes) => {
                prop_assert_eq!(bytes.len() % 32, 0);
                prop_assert_eq!(tile_bytes(&hashes), bytes);
            }
            Err(err) => {
                prop_assert_ne!(bytes.len() % 32, 0);
                prop_assert_eq!(err, TileError::TileBytes { len: bytes.len() });
            }
        }
    }

    /// Proof verification takes any sizes, indexes and hashes (a client's, a witness's
    /// request) and answers with a typed error, never a panic.
    #[test]
    fn proofs_of_any_numbers_are_checked(
        index in size(),
        first in size(),
        second in size(),
        proof in proptest::collection::vec(hash(), 0..70),
        a in hash(),
        b in hash(),
    ) {
        prop_assert!(verify_inclusion(&a, index, second, &proof, &b).is_err() || proof.is_empty() && a == b);
        let consistent = verify_consistency(first, second, &proof, &a, &b);
        if consistent.is_ok() {
            prop_assert!(proof.is_empty() && (first == 0 || a == b));
        }
    }

    /// Plans over stored tiles take any sizes and indexes: each is made or refused with a
    /// typed error, and assembles from answers of the right shape (a typed error for any
    /// other) without a panic.
    #[test]
    fn plans_of_any_numbers_never_panic(
        index in size(),
        first in size(),
        size in size(),
        stored in size(),
        level in 0u8..=MAX_TILE_LEVEL,
        width in 1u16..=TILE_WIDTH,
        short in any::<Index>(),
    ) {
        let tile = TileId::new(level, index, width).unwrap();
        let plans = [
            Plan::inclusion(index, size, stored),
            Plan::consistency(first, size, stored),
            Plan::root(size, stored),
            Plan::tile(tile, stored),
        ];
        for plan in plans.into_iter().flatten() {
            let answers: Vec<Vec<Hash>> = plan.reads().iter().map(|r| vec![[0u8; 32]; r.len() as usize]).collect();
            plan.assemble(&answers).unwrap();
            if !answers.is_empty() {
                let mut wrong = answers.clone();
                let i = short.index(wrong.len());
                wrong[i].pop();
                prop_assert!(matches!(plan.assemble(&wrong), Err(TileError::ReadLength { .. })), "a short answer");
                wrong.remove(i);
                prop_assert!(matches!(plan.assemble(&wrong), Err(TileError::ReadCount { .. })), "an answer missing");
            }
        }
    }

    /// A tile builder resumes from any size and answers: answers of the wrong shape are a
    /// typed error, the right shape gives a builder that takes more leaves.
    #[test]
    fn tile_builders_resume_from_any_answers(
        size in size().prop_filter("room for one more leaf", |s| *s < u64::MAX),
        lengths in proptest::collection::vec(0usize..300, 0..10),
        leaf in hash(),
    ) {
        let wrong: Vec<Vec<Hash>> = lengths.iter().map(|&n| vec![[0u8; 32]; n]).collect();
        let reads = edge_reads(size);
        let shaped = wrong.len() == reads.len() && wrong.iter().zip(&reads).all(|(w, r)| w.len() as u64 == r.len());
        prop_assert_eq!(TileBuilder::resume(size, &wrong).is_ok(), shaped);
        let answers: Vec<Vec<Hash>> = reads.iter().map(|r| vec![[0u8; 32]; r.len() as usize]).collect();
        let mut builder = TileBuilder::resume(size, &answers).unwrap();
        let _ = builder.push(leaf);
        prop_assert_eq!(builder.size(), size + 1);
        let _ = builder.root();
    }
}
