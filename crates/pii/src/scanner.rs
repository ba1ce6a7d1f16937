//! The scanner: runs the recognizers, scores context, resolves overlaps.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use crate::context;
use crate::custom;
use crate::error::{Error, Result};
use crate::finding::{Evidence, EvidenceKind, Finding};
use crate::lexer::HotBuffer;
use crate::recognizers::joint::{self, Joint};
use crate::recognizers::numbers::DEFAULT_PHONE_REGIONS;
use crate::recognizers::{Hit, Recognizer, Tier, Veto, builtin};

/// Spans at most this many bytes apart on average make a text dense: its words are read
/// once for every window (see [`context::Window::read_all`]).
const DENSE_SPAN_BYTES: usize = 40;

/// The longest text whose words are listed so (the list takes about five times the text:
/// a megabyte block on each of a server's threads at once would be too much).
const LISTED_WORDS_TEXT: usize = 64 << 10;

/// Score under which findings are not reported unless asked for (`--min-score`).
pub const DEFAULT_MIN_SCORE: f32 = 0.4;

/// Builds a [`Scanner`]: which entities, which custom recognizers, which phone regions.
#[derive(Debug, Clone)]
pub struct ScannerBuilder {
    entities: Option<Vec<String>>,
    custom_files: Vec<std::path::PathBuf>,
    custom_sources: Vec<(String, String)>,
    phone_regions: Vec<String>,
    min_score: f32,
    language: bool,
    labels_veto: bool,
}

impl Default for ScannerBuilder {
    fn default() -> Self {
        Self {
            entities: None,
            custom_files: Vec::new(),
            custom_sources: Vec::new(),
            phone_regions: DEFAULT_PHONE_REGIONS.iter().map(|s| (*s).to_owned()).collect(),
            min_score: DEFAULT_MIN_SCORE,
            language: true,
            labels_veto: true,
        }
    }
}

impl ScannerBuilder {
    /// Whether it builds what `ScannerBuilder::default()` does.
    fn is_default(&self) -> bool {
        self.entities.is_none()
            && self.custom_files.is_empty()
            && self.custom_sources.is_empty()
            && self.phone_regions.iter().eq(DEFAULT_PHONE_REGIONS.iter())
            && self.min_score == DEFAULT_MIN_SCORE
            && self.language
            && self.labels_veto
    }

    /// Restricts the scan to these entity types (built-in or custom).
    pub fn entities<I: IntoIterator<Item = S>, S: Into<String>>(mut self, e: I) -> Self {
        self.entities = Some(e.into_iter().map(Into::into).collect());
        self
    }

    /// Adds the user-defined recognizers of a TOML file.
    pub fn custom_file(mut self, path: impl AsRef<Path>) -> Self {
        self.custom_files.push(path.as_ref().to_path_buf());
        self
    }

    /// Adds user-defined recognizers from TOML text; `origin` names it in errors.
    pub fn custom_toml(mut self, origin: impl Into<String>, toml: impl Into<String>) -> Self {
        self.custom_sources.push((origin.into(), toml.into()));
        self
    }

    /// Regions (ISO 3166 codes) whose national phone number plans are tried.
    pub fn phone_regions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, r: I) -> Self {
        self.phone_regions = r.into_iter().map(Into::into).collect();
        self
    }

    /// Findings scoring under this are dropped. `0.0` keeps everything.
    pub fn min_score(mut self, s: f32) -> Self {
        self.min_score = s;
        self
    }

    /// Whether to run the language recognizers (PERSON, LOCATION, ADDRESS, month names):
    /// without them a scan is identifiers only, and several times faster.
    pub fn language(mut self, on: bool) -> Self {
        self.language = on;
        self
    }

    /// Whether a label just before a number (`order`, `ticket`, `ref`, `build`, `SKU`…) or a
    /// field named by one says it is that kind of number, not a phone or a card (the
    /// default). A screen turns it off: a phone number after `claim` is one all the same.
    pub fn labels_veto(mut self, on: bool) -> Self {
        self.labels_veto = on;
        self
    }

    pub fn build(self) -> Result<Scanner> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(Error::Invalid(format!(
                "min score must be between 0 and 1, not {}",
                self.min_score
            )));
        }
        // a scan narrowed to some entity types, or to higher scores, still hides a name it
        // prints that holds personal data of any type (see `Scanner::names_personal_data`)
        let narrowed = self.entities.is_some() || !self.language || self.min_score > DEFAULT_MIN_SCORE;
        let names = if narrowed {
            let every = ScannerBuilder {
                entities: None,
                language: true,
                labels_veto: true,
                min_score: self.min_score.min(DEFAULT_MIN_SCORE),
                ..self.clone()
            };
            // the default one is shared: a server caches a scanner for each narrowing asked
            // for, and each would hold its own (some megabytes)
            static DEFAULT_NAMES: std::sync::OnceLock<Option<Arc<Scanner>>> = std::sync::OnceLock::new();
            let shared = every
                .is_default()
                .then(|| {
                    DEFAULT_NAMES
                        .get_or_init(|| ScannerBuilder::default().build().ok().map(Arc::new))
                        .clone()
                })
                .flatten();
            Some(match shared {
                Some(scanner) => scanner,
                None => Arc::new(every.build()?),
            })
        } else {
            None
        };
        let mut all = builtin::all(&self.phone_regions)?;
        for path in &self.custom_files {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            all.extend(custom::parse(&path.display().to_string(), &text)?);
        }
        for (origin, text) in &self.custom_sources {
            all.extend(custom::parse(origin, text)?);
        }
        let known: HashSet<String> = all.iter().map(|r| r.entity().to_string()).collect();
        if !self.language {
            all.retain(|r| r.tier() == Tier::Identifier);
        }
        if let Some(wanted) = &self.entities {
            for w in wanted {
                if !known.contains(w) {
                    return Err(Error::UnknownEntity(w.clone()));
                }
            }
            all.retain(|r| wanted.iter().any(|w| **r.entity() == **w));
        }
        let mut entities: Vec<Arc<str>> = Vec::new();
        for r in &all {
            if !entities.contains(r.entity()) {
                entities.push(r.entity().clone());
            }
        }
        let (identifier, language): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| r.tier() == Tier::Identifier);
        let (wide, tight): (Vec<_>, Vec<_>) = identifier.into_iter().partition(|r| r.needs_neighbors());
        let words = language.iter().any(|r| r.uses_words());
        // context word sets in the order `scan_field` numbers the recognizers
        let mut vocabulary = context::Vocabulary::default();
        let context_sets = tight
            .iter()
            .chain(&wide)
            .chain(&language)
            .map(|r| vocabulary.add(r.context()))
            .collect();
        Ok(Scanner {
            vocabulary,
            context_sets,
            joints: [Together::new(&tight)?, Together::new(&wide)?],
            by_buffer: [tight, wide],
            language,
            words,
            min_score: self.min_score,
            labels_veto: self.labels_veto,
            entities,
            names,
        })
    }
}

/// Finds personal data in bytes. Cheap to share between threads (`&Scanner` is `Sync`).
pub struct Scanner {
    /// Identifier recognizers by the buffer they read: hot tokens alone, then hot tokens
    /// with their neighbouring words.
    by_buffer: [Vec<Box<dyn Recognizer>>; 2],
    /// For each buffer, its built-in pattern recognizers run as one automaton.
    joints: [Together; 2],
    /// Every recognizer's context words, numbered.
    vocabulary: context::Vocabulary,
    /// Each recognizer's context words (tight, wide, then language recognizers).
    context_sets: Vec<context::WordSet>,
    language: Vec<Box<dyn Recognizer>>,
    /// Whether a language recognizer reads words (the text is then split once for all).
    words: bool,
    min_score: f32,
    /// Whether labels before a number veto phones and cards ([`ScannerBuilder::labels_veto`]).
    labels_veto: bool,
    entities: Vec<Arc<str>>,
    /// The scanner that tells whether a name the output prints holds personal data, when
    /// this one is narrowed (to some entity types, or to higher scores); `None`: this one.
    names: Option<Arc<Scanner>>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("entities", &self.entities)
            .field("min_score", &self.min_score)
            .finish()
    }
}

impl Scanner {
    pub fn builder() -> ScannerBuilder {
        ScannerBuilder::default()
    }

    /// The entity types this scanner looks for.
    pub fn entities(&self) -> &[Arc<str>] {
        &self.entities
    }

    pub fn min_score(&self) -> f32 {
        self.min_score
    }

    /// Whether a name the output prints (a JSON key in a pointer, a CSV header cell) holds
    /// personal data, by every entity type at the default minimum score whatever this
    /// scanner was narrowed to: `--entities PHONE_NUMBER` never prints a key that is an
    /// email address.
    pub fn names_personal_data(&self, name: &[u8]) -> bool {
        !self.names.as_deref().unwrap_or(self).scan(name).is_empty()
    }

    /// Findings in `text`, ordered by start offset.
    /// A table written as text (its first line a header) reads each column's header as
    /// the field name of the values under it.
    pub fn scan(&self, text: &[u8]) -> Vec<Finding> {
        let tables = context::TextTables::sniff(text, None);
        self.scan_table(text, Some(&tables).filter(|t| !t.is_empty()))
    }

    /// Findings in a block of a text whose columns `table` names.
    pub(crate) fn scan_table(&self, text: &[u8], table: Option<&context::TextTables>) -> Vec<Finding> {
        self.scan_with(text, Vec::new(), table)
    }

    /// Findings in the value of a field (a CSV column, a JSON key) whose name is context.
    pub fn scan_field(&self, text: &[u8], field: Option<&str>) -> Vec<Finding> {
        self.scan_with(text, field.map(context::field_words).unwrap_or_default(), None)
    }

    fn scan_with(&self, text: &[u8], field_words: Vec<String>, table: Option<&context::TextTables>) -> Vec<Finding> {
        // URL and HTML escapes (`email=jo%40example.com` in a logged query string,
        // `jo&#64;example.com`) are read decoded as well as written (each pass of an escape
        // of an escape too), the findings of the decoded readings placed on the escapes and
        // overlaps settled as always: decoding only adds (a `%20` cut a URL, a `+` an
        // address). A table's columns are told by the text as written (`%2C` is no
        // delimiter): the decoded readings go without.
        let passes = crate::mapped::escape_passes(text);
        if passes.is_empty() {
            let mut found = self.scan_plain(text, &field_words, table);
            found.iter_mut().for_each(|f| past_escape_letter(text, f));
            return found;
        }
        let mut found = Vec::new();
        for k in 0..=passes.len() {
            let (read, table) = match k.checked_sub(1).and_then(|p| passes.get(p)) {
                Some(pass) => (&pass.text[..], None),
                None => (text, table),
            };
            let mut here = self.scan_plain(read, &field_words, table);
            // a finding that starts or ends inside an escape of a delimiter took its hex
            // digits for the value's (`%3Cjo@example.com%3E`): the next pass reads it. Not
            // one of a letter or digit, a control character or a byte beyond ASCII:
            // `LIKE '%4532015112830366%'` is no escaped `E`, `'%ada@…'` no soft hyphen. A
            // backslash escape is one whatever it writes (`jo\u00a0smith@…` holds no address
            // `u00a0smith@…`, nor `jo\nsmith@…` one `nsmith@…`)
            if let Some(next) = passes.get(k) {
                let cut = |at: usize| {
                    next.written_over(at).is_some_and(|(escape, b)| {
                        read.get(escape) == Some(&b'\\') || b.is_ascii_punctuation() || b.is_ascii_whitespace()
                    })
                };
                here.retain(|f| !cut(f.start) && !cut(f.end));
            }
            for f in &mut here {
                for pass in passes[..k].iter().rev() {
                    (f.start, f.end) = pass.original_span((f.start, f.end));
                }
            }
            found.extend(here);
        }
        found.iter_mut().for_each(|f| past_escape_letter(text, f));
        resolve(found)
    }

    /// [`Self::scan_with`] on a text without escapes to decode.
    fn scan_plain(&self, text: &[u8], field_words: &[String], table: Option<&context::TextTables>) -> Vec<Finding> {
        let run = |scratch: &mut Scratch| {
            let found = self.scan_in(text, field_words, table, scratch);
            scratch.hot.iter_mut().for_each(HotBuffer::wipe);
            found
        };
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                let found = run(&mut scratch);
                scratch.trim();
                found
            }
            // never taken (a scan does not scan), but a fresh scratch is always right
            Err(_) => run(&mut Scratch::default()),
        })
    }

    fn scan_in(
        &self,
        text: &[u8],
        field_words: &[String],
        table: Option<&context::TextTables>,
        scratch: &mut Scratch,
    ) -> Vec<Finding> {
        let Scratch {
            hot,
            hits,
            pending,
            joint: joint_scratch,
        } = scratch;
        // every recognizer's hits in the text's coordinates, with the recognizer's place
        pending.clear();
        hits.clear();
        // two buffers: hot tokens alone, and hot tokens with their neighbours, each built
        // only if a recognizer needs it
        crate::lexer::build_hot(text, hot, self.by_buffer.each_ref().map(|users| !users.is_empty()));
        let mut place = 0;
        for ((hot, users), joint) in hot.iter().zip(&self.by_buffer).zip(&self.joints) {
            if users.is_empty() {
                continue;
            }
            if hot.buf.is_empty() {
                place += users.len();
                continue;
            }
            // the buffer with the no-break spaces, Unicode dashes and invisible characters
            // that group digits written in ASCII, made when first asked for: the joint's
            // patterns (`536\u{2011}22\u{2011}1234` is an SSN) and the recognizers written as
            // code that ask for it read it
            let mut plain = None;
            if joint.joins() {
                plain = Some(crate::mapped::ascii_separators(&hot.buf));
            }
            match plain.as_ref().and_then(Option::as_ref) {
                Some(plain) => {
                    joint.find(&plain.text, users, joint_scratch);
                    for h in joint_scratch.out.iter_mut().flatten() {
                        (h.start, h.end) = plain.original_span((h.start, h.end));
                    }
                }
                None => joint.find(&hot.buf, users, joint_scratch),
            }
            for (i, r) in users.iter().enumerate() {
                hits.clear();
                match joint.member(i).and_then(|m| joint_scratch.out.get_mut(m)) {
                    Some(found) => hits.append(found),
                    None if r.reads_separators_in_ascii() => {
                        match plain.get_or_insert_with(|| crate::mapped::ascii_separators(&hot.buf)) {
                            Some(plain) => {
                                r.find(&plain.text, hits);
                                for h in hits.iter_mut() {
                                    (h.start, h.end) = plain.original_span((h.start, h.end));
                                }
                            }
                            None => r.find(&hot.buf, hits),
                        }
                    }
                    None => r.find(&hot.buf, hits),
                }
                for h in hits.drain(..) {
                    if let Some((s, e)) = hot.to_text(h.start, h.end) {
                        let mut h = Hit { start: s, end: e, ..h };
                        if r.read_in_text(text, &mut h) {
                            pending.push((place, h));
                        }
                    }
                }
                place += 1;
            }
        }
        let words = if self.words {
            crate::recognizers::language::words_of(text)
        } else {
            crate::recognizers::language::Words::default()
        };
        let fields = context::Fields::new(table, field_words);
        for r in &self.language {
            hits.clear();
            r.find_with_words(text, &words, &fields, hits);
            pending.extend(hits.drain(..).map(|h| (place, h)));
            place += 1;
        }
        // in the order of the text, so that the hits of several recognizers on one span
        // read its context words once; ties in the recognizers' order
        pending.sort_by_key(|(place, h)| (h.start, h.end, *place));
        let mut window = context::Window::default();
        // spans close together (text dense with identifiers) share most of their words:
        // then every word is read once, not once for each span near it
        let spans = pending
            .chunk_by(|(_, a), (_, b)| (a.start, a.end) == (b.start, b.end))
            .count();
        if text.len() <= LISTED_WORDS_TEXT && spans.saturating_mul(DENSE_SPAN_BYTES) >= text.len() {
            window.read_all(text, &self.vocabulary);
        }
        let mut found = Scored {
            found: Vec::with_capacity(pending.len()),
            yielding: Vec::new(),
        };
        // hits in text order: those at one place (several recognizers find the same number)
        // read its field name once
        let mut field_at: Option<(usize, std::borrow::Cow<'_, [String]>)> = None;
        for (place, h) in pending.drain(..) {
            let Some(r) = self.at_place(place) else {
                continue;
            };
            if field_at.as_ref().is_none_or(|(at, _)| *at != h.start) {
                field_at = Some((h.start, fields.at(text, h.start)));
            }
            let field_words = field_at.as_ref().map_or(&[][..], |(_, words)| &**words);
            self.score(text, (r, place), h, field_words, &mut window, &mut found);
        }
        found.resolve()
    }

    /// The recognizer at `place` in the order [`Self::scan_in`] numbers them: the hot
    /// tokens' recognizers, those of hot tokens with neighbours, then the language ones.
    fn at_place(&self, place: usize) -> Option<&dyn Recognizer> {
        let [tight, wide] = &self.by_buffer;
        let r = match place.checked_sub(tight.len()) {
            None => tight.get(place),
            Some(p) => match p.checked_sub(wide.len()) {
                None => wide.get(p),
                Some(p) => self.language.get(p),
            },
        };
        r.map(AsRef::as_ref)
    }

    fn score(
        &self,
        text: &[u8],
        (r, place): (&dyn Recognizer, usize),
        mut h: Hit,
        field_words: &[String],
        window: &mut context::Window,
        out: &mut Scored,
    ) {
        let meta = r.meta();
        // a field named by a label holds those numbers, whatever its line says
        let (labelled, field_labelled) = match meta.label_veto {
            Veto::None => (false, false),
            Veto::Labels if !self.labels_veto => (false, false),
            Veto::Labels => (window.labelled(text, h.start), context::field_is_a_label(field_words)),
            Veto::Versions => (context::named_version(text, h.start, h.end, field_words), false),
        };
        if field_labelled || (labelled && !meta.context_beats_labels) {
            return;
        }
        let ctx = r.context();
        let near = self
            .context_sets
            .get(place)
            .and_then(|set| window.find(text, h.start, h.end, &self.vocabulary, set));
        // (a word of the line: `tracking 646995496601` ending one, `pagamento` opening the
        // next, is a tracking number)
        if labelled
            && !self
                .context_sets
                .get(place)
                .is_some_and(|set| window.on_the_line(text, (h.start, h.end), &self.vocabulary, set))
        {
            return;
        }
        let field = field_words.iter().find(|w| ctx.iter().any(|c| c == *w));
        if h.field_only && !context::head_word(field_words).is_some_and(|head| ctx.iter().any(|c| c == head)) {
            return;
        }
        // a recognizer that read the context itself (a name after `cliente`, in a `nombre`
        // column) has counted it already
        let counted = h
            .evidence
            .iter()
            .any(|e| matches!(e.kind, EvidenceKind::Context | EvidenceKind::FieldName));
        if !counted && (near.is_some() || field.is_some()) {
            h.score = (h.score + context::BOOST).clamp(context::MIN_WITH_CONTEXT, 1.0);
            if let Some(w) = near {
                h.evidence.push(Evidence::new(EvidenceKind::Context, w.clone()));
            }
            if let Some(w) = field {
                h.evidence.push(Evidence::new(EvidenceKind::FieldName, w.as_str()));
            }
        }
        if h.score > 0.0 && h.score >= self.min_score {
            // a name of another identifier just before the match, or a field named so and
            // not by a word of this entity (`nhs_number`, `"bsn"`; not `security_phone`): the
            // finding yields to that identifier's, if any overlaps it (asked only of a
            // finding reported: most candidates are not)
            let named_otherwise = meta.not_after.is_some_and(|names| {
                context::label_before(text, h.start, names).is_some_and(|l| !ctx.iter().any(|c| c == l))
                    || (field.is_none() && field_words.iter().any(|w| names.get(w.as_bytes()).is_some()))
            });
            let out = if named_otherwise {
                &mut out.yielding
            } else {
                &mut out.found
            };
            out.push(Finding {
                entity_type: r.entity().clone(),
                start: h.start,
                end: h.end,
                score: (h.score * 100.0).round() / 100.0,
                evidence: h.evidence,
            });
        }
    }
}

/// A finding that starts at the letter of an escaped control character (`\nsmith@…`,
/// `\tjo@…`: a line break or tab escaped in a log line or a JSON string, where no escape of a
/// code made the text read decoded) starts after it: the letter is the escape's, a hash of the
/// value with it would not join the value's, and a redaction that took it would leave a
/// backslash alone (an invalid escape in JSON).
fn past_escape_letter(text: &[u8], f: &mut Finding) {
    if f.end > f.start + 1 && crate::recognizers::escaped_control(text, f.start).is_some() {
        f.start += 1;
    }
}

/// A text's scored findings: those that stand, and those that yield to another identifier's
/// (a phone number after `NHS number is` is the NHS number the NHS recognizer finds there,
/// else still a phone number: a finding is never lost to a name alone).
struct Scored {
    found: Vec<Finding>,
    yielding: Vec<Finding>,
}

impl Scored {
    fn resolve(self) -> Vec<Finding> {
        let mut kept = resolve(self.found);
        let standing = kept.len();
        // the furthest end of the standing findings up to each (they are ordered by start):
        // only those back to where no earlier one reaches a yielding finding's end can hold
        // it (asking all of them for each was quadratic on a text of both kinds)
        let reach: Vec<usize> = kept
            .iter()
            .scan(0, |far, k| {
                *far = k.end.max(*far);
                Some(*far)
            })
            .collect();
        // yields to a finding of another type over the whole of it, one that would be
        // reported at the default score (not to a fragment, nor to a 0.05 bank number)
        for y in resolve(self.yielding) {
            let upto = kept[..standing].partition_point(|k| k.start <= y.start);
            let beaten = kept[..upto]
                .iter()
                .zip(&reach[..upto])
                .rev()
                .take_while(|&(_, &far)| far >= y.end)
                .any(|(k, _)| y.end <= k.end && k.entity_type != y.entity_type && k.score >= context::MIN_WITH_CONTEXT);
            if !beaten {
                kept.push(y);
            }
        }
        if kept.len() > standing {
            kept.sort_by_key(|f| (f.start, f.end));
        }
        kept
    }
}

/// The joinable recognizers of one buffer and their [`Joint`] automaton.
struct Together {
    joint: Option<Joint>,
    /// For each recognizer of the buffer, its place among the joint's members.
    member: Vec<Option<usize>>,
}

impl Together {
    fn new(users: &[Box<dyn Recognizer>]) -> Result<Self> {
        let mut member = Vec::with_capacity(users.len());
        let mut members = Vec::new();
        for r in users {
            member.push(r.as_joinable().map(|p| {
                members.push(p);
                members.len() - 1
            }));
        }
        let joint = if members.is_empty() {
            None
        } else {
            Some(Joint::new(&members)?)
        };
        Ok(Self { joint, member })
    }

    /// Whether any recognizer of the buffer is a member.
    fn joins(&self) -> bool {
        self.joint.is_some()
    }

    fn member(&self, i: usize) -> Option<usize> {
        self.member.get(i).copied().flatten()
    }

    /// The members' hits, by member, into `scratch.out` (which [`Joint::find`] clears;
    /// without a joint no recognizer is a member, so it is not read).
    fn find(&self, hay: &[u8], users: &[Box<dyn Recognizer>], scratch: &mut joint::Scratch) {
        if let Some(joint) = &self.joint {
            let members: Vec<_> = users.iter().filter_map(|r| r.as_joinable()).collect();
            joint.find(hay, &members, scratch);
        }
    }
}

/// What one scan writes as it goes, kept by each thread from one scan to the next: text
/// dense with identifiers (documents of a few hundred bytes, each with dozens of numbers)
/// spent a tenth of its time making these anew.
#[derive(Default)]
struct Scratch {
    /// The hot tokens alone, and with their neighbours.
    hot: [HotBuffer; 2],
    hits: Vec<Hit>,
    pending: Vec<(usize, Hit)>,
    joint: joint::Scratch,
}

impl Scratch {
    /// The most a thread keeps between scans, in bytes. Small: the server scans on a pool
    /// of up to hundreds of threads, each of which keeps its own; a scan of a large text
    /// makes its buffers anew (their cost is then small beside the scan's).
    const KEEP: usize = 1 << 20;

    /// The bytes the buffers hold on to.
    fn held(&self) -> usize {
        use std::mem::size_of;
        let joint = &self.joint;
        self.hot.iter().map(HotBuffer::held).sum::<usize>()
            + self.hits.capacity() * size_of::<Hit>()
            + self.pending.capacity() * size_of::<(usize, Hit)>()
            + joint.held()
    }

    /// Drops the buffers if a large scan made them large.
    fn trim(&mut self) {
        if self.held() > Self::KEEP {
            *self = Self::default();
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Overlaps: of one entity type the best finding stays; of different types a finding
/// inside a longer or better-scored one goes; equal spans with equal scores all stay.
fn resolve(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    // which findings stay, in the order they are reported; then each is moved, not copied
    let mut order = Vec::with_capacity(found.len());
    let mut i = 0;
    while i < found.len() {
        // a cluster of transitively overlapping findings
        let mut j = i + 1;
        let mut end = found[i].end;
        while j < found.len() && found[j].start < end {
            end = end.max(found[j].end);
            j += 1;
        }
        if j == i + 1 {
            order.push(i);
        } else {
            let mut cluster: Vec<usize> = (i..j).collect();
            cluster.sort_by(|&a, &b| {
                let (a, b) = (&found[a], &found[b]);
                b.score
                    .total_cmp(&a.score)
                    .then(b.len().cmp(&a.len()))
                    .then(a.start.cmp(&b.start))
            });
            let mut kept: Vec<usize> = Vec::new();
            for f in cluster {
                let f_ = &found[f];
                let beaten = kept.iter().map(|&k| &found[k]).any(|k| {
                    k.overlaps(f_)
                        && (k.entity_type == f_.entity_type
                            || (k.start <= f_.start && f_.end <= k.end && (k.score > f_.score || k.len() > f_.len())))
                });
                if !beaten {
                    kept.push(f);
                }
            }
            kept.sort_by(|&a, &b| {
                found[a]
                    .start
                    .cmp(&found[b].start)
                    .then(found[a].end.cmp(&found[b].end))
            });
            order.extend(kept);
        }
        i = j;
    }
    let mut found: Vec<Option<Finding>> = found.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(order.len());
    out.extend(
        order
            .into_iter()
            .filter_map(|k| found.get_mut(k).and_then(Option::take)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entities(text: &str) -> Result<Vec<(String, String)>> {
        let s = Scanner::builder().build()?;
        Ok(s.scan(text.as_bytes())
            .into_iter()
            .map(|f| (f.entity_type.to_string(), text[f.start..f.end].to_owned()))
            .collect())
    }

    /// `[(entity, value)]`.
    fn one(entity: &str, value: &str) -> Vec<(String, String)> {
        vec![(entity.to_owned(), value.to_owned())]
    }

    /// An identifier glued to punctuation beyond ASCII or to a script written without spaces
    /// stands alone; glued to a letter or digit of a script written with spaces, it is part
    /// of a longer word, as in ASCII.
    #[test]
    fn identifiers_end_where_scripts_without_spaces_begin() -> Result<()> {
        assert_eq!(
            identifiers("IBAN DE89370400440532013000。")?,
            one("IBAN_CODE", "DE89370400440532013000")
        );
        assert_eq!(
            identifiers("账户DE89370400440532013000山田")?,
            one("IBAN_CODE", "DE89370400440532013000")
        );
        assert_eq!(
            identifiers("社会保障号536-90-4399，谢谢")?,
            one("US_SSN", "536-90-4399")
        );
        assert_eq!(
            identifiers("电话+44 20 7946 0958或邮件")?,
            one("PHONE_NUMBER", "+44 20 7946 0958")
        );
        assert_eq!(
            identifiers("연락처 +82 10-1234-5678로")?,
            one("PHONE_NUMBER", "+82 10-1234-5678")
        );
        assert_eq!(
            identifiers("カード4111 1111 1111 1111で")?,
            one("CREDIT_CARD", "4111 1111 1111 1111")
        );
        assert_eq!(identifiers("«203.0.113.7»")?, one("IP_ADDRESS", "203.0.113.7"));
        assert_eq!(
            identifiers("Tél.\u{a0}:\u{a0}+33 1 42 68 53 00")?,
            one("PHONE_NUMBER", "+33 1 42 68 53 00")
        );
        // letters of scripts written with spaces still join: no identifier inside a word
        assert_eq!(identifiers("éDE89370400440532013000")?, vec![]);
        assert_eq!(identifiers("DE89370400440532013000ü")?, vec![]);
        assert_eq!(identifiers("№536-90-4399д")?, vec![]);
        assert_eq!(identifiers("λ203.0.113.7")?, vec![]);
        // a decomposed letter joins as the composed one; fullwidth digits are digits
        assert_eq!(identifiers("u\u{308}4111111111111111")?, vec![]);
        assert_eq!(identifiers("cafe\u{301}203.0.113.7")?, vec![]);
        assert_eq!(identifiers("4111111111111111\u{301}x")?, vec![]);
        // a mark after an identifier belongs to its last character: it stands alone
        assert_eq!(
            identifiers("4111111111111111\u{301} ")?,
            one("CREDIT_CARD", "4111111111111111")
        );
        assert_eq!(
            identifiers(" \u{301}4111111111111111")?,
            one("CREDIT_CARD", "4111111111111111")
        );
        let zalgo = format!("x{}4111111111111111", "\u{301}".repeat(40));
        assert_eq!(identifiers(&zalgo)?, vec![]);
        assert_eq!(identifiers("１4111111111111111")?, vec![]);
        // list markers, footnotes and other scripts without spaces do not
        assert_eq!(
            identifiers("①4111111111111111")?,
            one("CREDIT_CARD", "4111111111111111")
        );
        assert_eq!(
            identifiers("²4111111111111111")?,
            one("CREDIT_CARD", "4111111111111111")
        );
        assert_eq!(
            identifiers("carte nº4111 1111 1111 1111")?,
            one("CREDIT_CARD", "4111 1111 1111 1111")
        );
        assert_eq!(
            identifiers("ꩠ4111111111111111")?,
            one("CREDIT_CARD", "4111111111111111")
        );
        assert_eq!(identifiers("㊀203.0.113.7")?, one("IP_ADDRESS", "203.0.113.7"));
        Ok(())
    }

    /// Four dotted numbers named a version are one, not an address; named otherwise (an
    /// order, a case) they stay an address.
    #[test]
    fn versions_are_no_addresses() -> Result<()> {
        let ips =
            |text: &str| -> Result<usize> { Ok(entities(text)?.iter().filter(|(e, _)| e == "IP_ADDRESS").count()) };
        for version in [
            "firmware 3.19.20.206",
            "Version: 10.0.0.1",
            "release 2.4.1.0 is out",
            "版本号10.0.0.1",
            "versión 1.2.3.4",
            "build #10.0.0.1",
            "version: \"10.0.0.1\"",
        ] {
            assert_eq!(ips(version)?, 0, "{version}");
        }
        for address in [
            "server 10.0.0.1",
            "case 10.0.0.1",
            "from 203.0.113.9",
            "version: see 10.0.0.1",
            "fw 10.0.0.1 blocked",
            "build_host 10.0.0.1",
            "release_server: 10.0.0.1",
            "version 10.0.0.1:8080",
            "version 10.0.0.1/24",
        ] {
            assert_eq!(ips(address)?, 1, "{address}");
        }
        Ok(())
    }

    /// The fraction of a time in RFC 3339 (`.1234562Z`: seven or eight digits and a letter)
    /// is no Spanish NIF, however its check letter falls, even where dates are not looked for
    /// (the assessment's scan of the data directory); a NIF standing alone still is.
    #[test]
    fn time_fractions_are_no_nif() -> Result<()> {
        let nif = Scanner::builder().entities(["ES_NIF"]).build()?;
        let found = |text: &str| -> Vec<String> {
            nif.scan(text.as_bytes())
                .iter()
                .map(|f| text[f.start..f.end].to_owned())
                .collect()
        };
        // 1234562 mod 23 = 14 and 12345678 mod 23 = 14: `Z` is their check letter
        for stamp in [
            "at 2026-12-06T02:17:03.1234562Z ok",
            "\"at\":\"2026-12-06T02:17:03.12345678Z\"",
        ] {
            assert_eq!(found(stamp), Vec::<String>::new(), "{stamp}");
        }
        assert_eq!(found("DNI 12345678Z"), vec!["12345678Z"]);
        Ok(())
    }

    /// Numbers grouped with no-break spaces (French typography, word processors) are found
    /// as when grouped with spaces, their spans on the original text.
    #[test]
    fn numbers_grouped_with_no_break_spaces() -> Result<()> {
        let phone = "01\u{a0}42\u{a0}68\u{a0}53\u{a0}00";
        assert_eq!(identifiers(&format!("Tél\u{a0}: {phone}"))?, one("PHONE_NUMBER", phone));
        let phone = "+33\u{202f}1\u{202f}42\u{202f}68\u{202f}53\u{202f}00";
        assert_eq!(
            identifiers(&format!("appelez le {phone}."))?,
            one("PHONE_NUMBER", phone)
        );
        let iban = "FR76\u{a0}3000\u{a0}6000\u{a0}0112\u{a0}3456\u{a0}7890\u{a0}189";
        assert_eq!(identifiers(&format!("IBAN : {iban}"))?, one("IBAN_CODE", iban));
        let card = "4111\u{a0}1111\u{a0}1111\u{a0}1111";
        assert_eq!(identifiers(&format!("carte {card} — merci"))?, one("CREDIT_CARD", card));
        Ok(())
    }

    /// Identifiers written URL-encoded (a query string in a web server's log, a form post)
    /// or as HTML character references are found, each span all of its escaped form; text
    /// that merely holds `%` or `&` is read as before.
    #[test]
    fn url_and_html_escaped_identifiers() -> Result<()> {
        let email = "jo.beck%40example.com";
        assert_eq!(
            identifiers(&format!("GET /subscribe?email={email}&plan=pro HTTP/1.1"))?,
            one("EMAIL_ADDRESS", email)
        );
        assert_eq!(
            identifiers("mailto:jo%2Bbank%40example.co.uk")?,
            one("EMAIL_ADDRESS", "jo%2Bbank%40example.co.uk")
        );
        // a form's encoding (`+` a space) and encodeURIComponent's (`%20`)
        for phone in ["%2B44+20+7946+0958", "%2B44%2020%207946%200958"] {
            assert_eq!(
                identifiers(&format!("POST /contact name=Jo&phone={phone}&ok=1"))?,
                one("PHONE_NUMBER", phone)
            );
        }
        assert_eq!(
            identifiers("card=4111%201111%201111%201111&cvv=123")?,
            one("CREDIT_CARD", "4111%201111%201111%201111")
        );
        for email in [
            "jo&#64;example.com",
            "jo&#x40;example&#46;com",
            "jo&commat;example&period;com",
        ] {
            assert_eq!(
                identifiers(&format!("<a>Write to {email}</a>"))?,
                one("EMAIL_ADDRESS", email)
            );
        }
        // a `+` outside an encoded stretch is a plus sign: `+44 20 7946 0958` whole
        assert_eq!(
            identifiers("call +44 20 7946 0958 (50% off &amp; more), see x?q=a%20b")?,
            one("PHONE_NUMBER", "+44 20 7946 0958")
        );
        // a `+` in an address is one, whatever else the line escapes, digits around it too
        for email in ["john.smith+news@gmail.com", "bob99+2024@example.com"] {
            assert_eq!(
                identifiers(&format!("mailto:{email}?subject=Hi%20there"))?,
                one("EMAIL_ADDRESS", email)
            );
        }
        // a URL with an escaped space is one URL, not cut at it
        let url = "https://shop.example.com/search?q=red%20shoes&page=2";
        assert_eq!(found(&format!("see {url} now"), "URL")?, [url]);
        // any named reference, a numeric one without `;`, an escape of an escape
        for email in [
            "mary.o&apos;brien@example.com",
            "x&lowbar;y@example.com",
            "jo&#64example.com",
            "jo@exa&shy;mple.com",
            "jo%2540example.com",
            "jo&amp;#64;example.com",
            "jo%252540example.com",
            "jo&amp;amp;#64;example.com",
        ] {
            assert_eq!(
                identifiers(&format!("write to {email} now"))?,
                one("EMAIL_ADDRESS", email)
            );
        }
        // a legacy reference without its `;`, as browsers read it in text; not before `=`
        for (text, entity, value) in [
            ("card&nbsp4111111111111111 ok", "CREDIT_CARD", "4111111111111111"),
            (
                "tel:&nbsp+44&nbsp20&nbsp7946&nbsp0958 ok",
                "PHONE_NUMBER",
                "+44&nbsp20&nbsp7946&nbsp0958",
            ),
            ("mail jo&#64example.com&nbspnow", "EMAIL_ADDRESS", "jo&#64example.com"),
        ] {
            assert_eq!(identifiers(text)?, one(entity, value), "{text}");
        }
        assert_eq!(
            identifiers("GET /x?a=1&para=4111111111111111 HTTP/1.1")?,
            one("CREDIT_CARD", "4111111111111111")
        );
        assert_eq!(identifiers("AT&T and R&D, &notanumber")?, vec![]);
        // the domain of an address spelt out is no URL of its own
        assert_eq!(
            identifiers("see jo(at)example.com/path now")?,
            one("EMAIL_ADDRESS", "jo(at)example.com")
        );
        // an escape before or after a value is none of it
        for (text, email) in [
            ("to=%22jo(at)example.com%22", "jo(at)example.com"),
            ("%3Cjo@example.com%3E", "jo@example.com"),
            ("q=%20jo@example.com&x=1", "jo@example.com"),
        ] {
            assert_eq!(identifiers(text)?, one("EMAIL_ADDRESS", email), "{text}");
        }
        // a `%` that is no escape of a delimiter is none of an identifier's either: SQL's
        // wildcards, a format string, a percentage
        for (text, entity, value) in [
            (
                "WHERE card LIKE '%4532015112830366%';",
                "CREDIT_CARD",
                "4532015112830366",
            ),
            ("printf(\"%4532015112830366\")", "CREDIT_CARD", "4532015112830366"),
            ("LIKE '%DE89370400440532013000%'", "IBAN_CODE", "DE89370400440532013000"),
            ("LIKE '%ada@example.com%'", "EMAIL_ADDRESS", "ada@example.com"),
            // and such a `%` escaped in a query string: read at the pass that wrote it
            (
                "GET /s?q=%254111111111111111%25 HTTP/1.1",
                "CREDIT_CARD",
                "4111111111111111",
            ),
            ("q=%25DE89370400440532013000%25", "IBAN_CODE", "DE89370400440532013000"),
            ("q=%25192.168.1.10%25", "IP_ADDRESS", "192.168.1.10"),
        ] {
            let found = identifiers(text)?;
            assert!(
                found.contains(&(entity.to_owned(), value.to_owned())),
                "{text}: {found:?}"
            );
        }
        // an address spelt out in brackets, in a text with escapes too
        for email in ["info(at)firma.de", "jo[at]example[dot]com", "jo%28at%29example.com"] {
            assert_eq!(
                identifiers(&format!("Kontakt: {email}, Tel."))?,
                one("EMAIL_ADDRESS", email)
            );
        }
        // invisible characters written by reference into a number hide nothing
        assert_eq!(
            identifiers("card 4532&shy;0151&shy;1283&shy;0366 ok")?,
            one("CREDIT_CARD", "4532&shy;0151&shy;1283&shy;0366")
        );
        for phone in [
            "+1&#160;212-555-0123",
            "+1&nbsp;212-555-0123",
            "+1\u{a0}212-555-0123",
            "+1&shy;212-555-0123",
        ] {
            assert_eq!(identifiers(&format!("call {phone} now"))?, one("PHONE_NUMBER", phone));
        }
        // an escape that decodes to a delimiter or a digit makes nothing up: `%2C`, `%31`
        assert_eq!(identifiers("q=4111%2C1111%2C1111%2C1111")?, vec![]);
        Ok(())
    }

    /// Numbers written with a word processor's dashes and spaces between their digits (a
    /// non-breaking hyphen, an en dash, a thin space) are found, spans on the original.
    #[test]
    fn numbers_with_unicode_dashes() -> Result<()> {
        for phone in [
            "212\u{2011}555\u{2011}0123",
            "+1\u{2009}212\u{2009}555\u{2009}0123",
            "(212)\u{a0}555\u{2010}0123",
        ] {
            assert_eq!(
                identifiers(&format!("call {phone} now"))?,
                one("PHONE_NUMBER", phone),
                "{phone}"
            );
        }
        let card = "4111\u{2011}1111\u{2011}1111\u{2011}1111";
        assert_eq!(identifiers(&format!("card {card}"))?, one("CREDIT_CARD", card));
        // invisible characters written into a number to hide it
        let card = "4532\u{ad}0151\u{ad}1283\u{ad}0366";
        assert_eq!(identifiers(&format!("card {card} ok"))?, one("CREDIT_CARD", card));
        let card = "4532 0151 1283\u{200b}0366";
        assert_eq!(identifiers(&format!("card {card} ok"))?, one("CREDIT_CARD", card));
        for ip in ["192.168\u{200b}.1.10", "192.168.1.1\u{ad}0"] {
            assert_eq!(identifiers(&format!("IP {ip} ok"))?, one("IP_ADDRESS", ip));
        }
        // groups joined by invisible characters alone, a number after them
        let card = "4532\u{200b}0151\u{200b}1283\u{200b}0366";
        let found = identifiers(&format!("card {card} 12"))?;
        assert!(
            found.contains(&("CREDIT_CARD".to_owned(), card.to_owned())),
            "{found:?}"
        );
        let phone = "+1\u{200b}212\u{200b}555\u{200b}0123";
        assert_eq!(identifiers(&format!("call {phone} now"))?, one("PHONE_NUMBER", phone));
        // a range of years (an en dash) is none; three groups joined by en dashes are a number
        assert!(identifiers("from 2019\u{2013}2021 and 1990\u{2013}1995")?.is_empty());
        let phone = "212\u{2013}555\u{2013}0123";
        assert_eq!(identifiers(&format!("call {phone} now"))?, one("PHONE_NUMBER", phone));
        // the patterns of the joint automaton read the same separators (an SSN)
        for ssn in [
            "536\u{2011}22\u{2011}1234",
            "536\u{2013}22\u{2013}1234",
            "536\u{a0}22\u{a0}1234",
            "536-22\u{ad}-1234",
        ] {
            let found = identifiers(&format!("SSN: {ssn} ok"))?;
            assert!(
                found.contains(&("US_SSN".to_owned(), ssn.to_owned())),
                "{ssn}: {found:?}"
            );
        }
        Ok(())
    }

    /// A line break or tab escaped in text (a JSON log line read as text, a quoted string)
    /// ends the word before an identifier; a letter after any other backslash does not.
    #[test]
    fn escaped_line_breaks_end_words() -> Result<()> {
        assert_eq!(
            identifiers(r#"{"msg":"paid\n4111 1111 1111 1111"}"#)?,
            one("CREDIT_CARD", "4111 1111 1111 1111")
        );
        assert_eq!(identifiers(r"ssn:\t536-90-4399")?, one("US_SSN", "536-90-4399"));
        assert_eq!(
            identifiers(r"at\r\nDE89370400440532013000")?,
            one("IBAN_CODE", "DE89370400440532013000")
        );
        assert_eq!(identifiers(r"\x4111111111111111")?, vec![]);
        // an escaped backslash, then a letter: `C:\\n4111…` is a word
        assert_eq!(identifiers(r"C:\\n4111111111111111")?, vec![]);
        assert_eq!(
            identifiers(r"at\\\n4111111111111111")?,
            one("CREDIT_CARD", "4111111111111111")
        );
        assert_eq!(identifiers("n4111111111111111")?, vec![]);
        // the letter of an escape is no version's or label's name (`\v` is no `v1.2`), and a
        // line break escaped ends the line a label would be on, as one written does
        assert_eq!(
            identifiers(r"ip \v192.168.10.20 x")?,
            one("IP_ADDRESS", "192.168.10.20")
        );
        assert_eq!(identifiers(r"ip \v2001:db8::1")?, one("IP_ADDRESS", "2001:db8::1"));
        assert_eq!(
            identifiers(r"tel \v+44 20 7946 0958")?,
            one("PHONE_NUMBER", "+44 20 7946 0958")
        );
        assert_eq!(
            identifiers(r#"{"note":"ticket\n+44 20 7946 0958"}"#)?,
            one("PHONE_NUMBER", "+44 20 7946 0958")
        );
        assert_eq!(
            identifiers(r"ticket\n+44 20 7946 0958")?,
            identifiers("ticket\n+44 20 7946 0958")?
        );
        assert_eq!(identifiers("v 192.168.10.20")?, vec![], "a version");
        assert_eq!(
            identifiers(r"version\t10.0.0.1")?,
            vec![],
            "a version, past an escaped tab"
        );
        assert_eq!(
            identifiers(r"ticket\t+44 20 7946 0958")?,
            vec![],
            "labelled, past an escaped tab"
        );
        assert_eq!(
            identifiers(r"x\nticket +44 20 7946 0958")?,
            vec![],
            "a label after a line break"
        );
        assert_eq!(identifiers(r"\vversion 10.0.0.1")?, vec![]);
        // a finding does not start at the letter of any escaped control character
        for escape in ["n", "t", "r", "f", "b", "v", "a"] {
            assert_eq!(
                identifiers(&format!("mail \\{escape}smith@example.com"))?,
                one("EMAIL_ADDRESS", "smith@example.com"),
                "{escape}"
            );
        }
        Ok(())
    }

    /// Context words and labels glued to punctuation beyond ASCII or to a script written
    /// without spaces are read as when spaces stand between them.
    #[test]
    fn context_words_beside_other_scripts() -> Result<()> {
        let s = Scanner::builder().build()?;
        let score = |text: &str| -> Vec<(String, f32)> {
            s.scan(text.as_bytes())
                .into_iter()
                .map(|f| (f.entity_type.to_string(), f.score))
                .collect()
        };
        let plain = score("SSN: 536-90-4399");
        assert!(
            plain.first().is_some_and(|(e, sc)| e == "US_SSN" && *sc > 0.8),
            "{plain:?}"
        );
        for text in [
            "SSN：536-90-4399",
            "SSN\u{a0}536-90-4399",
            "我的SSN是536-90-4399",
            "SSN「536-90-4399」",
            // an address after the number, joined by punctuation beyond ASCII: `SSN` is in none
            "SSN：536-90-4399，zhang@example.com",
        ] {
            assert_eq!(score(text).first(), plain.first(), "{text}");
        }
        // labels of orders and versions in Chinese, Japanese and Korean
        for text in [
            "订单号536-90-4399",
            "请提供订单号：536-90-4399",
            "注文番号 536-90-4399",
            "주문번호: 536-90-4399",
        ] {
            assert_eq!(score(text), vec![], "{text}");
        }
        // a name of a national id ending in "number" is no label
        assert!(!score("社会保障编号536-90-4399").is_empty());
        Ok(())
    }

    /// Each thread keeps a scan's buffers for the next: nothing of one text may reach the
    /// findings of another (a finding of a previous document in this one would report, and
    /// redact, bytes that are not there).
    #[test]
    fn a_scan_does_not_depend_on_the_scans_before_it() -> Result<()> {
        let s = Scanner::builder().build()?;
        let texts = [
            "Customer Jennifer Smith (jsmith@example.com) paid with 4111 1111 1111 1111 from 203.0.113.7.",
            "",
            "IBAN DE89370400440532013000, ssn 078-05-1123, tel. +44 20 7946 0958",
            "nothing to see",
            "Telefon,Name\n0371 569023,Ulla\n",
            "4111111111111111",
        ];
        // each alone, on a thread of its own
        let alone: Vec<Vec<Finding>> = std::thread::scope(|scope| {
            let handles: Vec<_> = texts.iter().map(|t| scope.spawn(|| s.scan(t.as_bytes()))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        assert!(alone.iter().filter(|f| !f.is_empty()).count() >= 4, "{alone:?}");
        // one after another on this thread, forwards and backwards
        for order in [(0..texts.len()).collect::<Vec<_>>(), (0..texts.len()).rev().collect()] {
            for i in order {
                assert_eq!(s.scan(texts[i].as_bytes()), alone[i], "{}", texts[i]);
            }
        }
        Ok(())
    }

    /// The kept hot buffers hold the last text's identifiers until the next scan unless they
    /// are wiped: after a scan they are empty (and their bytes zeroed, by `HotBuffer::wipe`).
    #[test]
    fn no_text_stays_in_the_kept_buffers() -> Result<()> {
        let s = Scanner::builder().build()?;
        assert!(!s.scan(b"card 4111 1111 1111 1111, mail jsmith@example.com").is_empty());
        SCRATCH.with(|cell| {
            let scratch = cell.borrow();
            for hot in &scratch.hot {
                assert!(hot.buf.is_empty() && hot.buf.capacity() > 0);
            }
        });
        Ok(())
    }

    /// A thread keeps at most `Scratch::KEEP` bytes after a scan, whatever the text made
    /// its buffers grow to (the server scans on a pool of many threads).
    #[test]
    fn a_large_scan_leaves_little_behind() -> Result<()> {
        let s = Scanner::builder().build()?;
        let text = "1 ".repeat(300_000) + "4111 1111 1111 1111";
        assert!(!s.scan(text.as_bytes()).is_empty());
        SCRATCH.with(|cell| assert!(cell.borrow().held() <= Scratch::KEEP));
        assert!(!s.scan(b"card 4111 1111 1111 1111").is_empty());
        SCRATCH.with(|cell| assert!(cell.borrow().held() > 0, "a small scan's buffers are kept"));
        Ok(())
    }

    #[test]
    fn mixed_text() -> Result<()> {
        let got =
            entities("Customer Jennifer Smith (jsmith@example.com) paid with 4111 1111 1111 1111 from 203.0.113.7.")?;
        let want = [
            ("PERSON", "Jennifer Smith"),
            ("EMAIL_ADDRESS", "jsmith@example.com"),
            ("CREDIT_CARD", "4111 1111 1111 1111"),
            ("IP_ADDRESS", "203.0.113.7"),
        ];
        for (e, v) in want {
            assert!(got.iter().any(|(ge, gv)| ge == e && gv == v), "{e} {v} not in {got:?}");
        }
        assert!(
            !got.iter().any(|(e, _)| e == "URL"),
            "an email's domain is not a URL: {got:?}"
        );
        Ok(())
    }

    #[test]
    fn names_stand_in_name_columns_keys_and_fields() -> Result<()> {
        // made-up names of no list: only where they stand says they are names
        let table =
            "nombre;correo;ciudad\nZorbak Müller;zq@example.com;Madrid\nQuintel Schmidt;qz@example.com;Sevilla\n";
        assert_eq!(found(table, "PERSON")?, vec!["Zorbak Müller", "Quintel Schmidt"]);
        let things =
            "producto;correo;ciudad\nZorbak Müller;zq@example.com;Madrid\nQuintel Schmidt;qz@example.com;Sevilla\n";
        assert!(found(things, "PERSON")?.is_empty());
        let json = r#"{"Name": "Zorbak Müller", "company": "Quintel Schmidt"}"#;
        assert_eq!(found(json, "PERSON")?, vec!["Zorbak Müller"]);
        let s = Scanner::builder().build()?;
        let person = |field| {
            s.scan_field("Zorbak Müller".as_bytes(), Some(field))
                .iter()
                .filter(|f| &*f.entity_type == "PERSON")
                .count()
        };
        assert_eq!(
            (person("customer_name"), person("company_name"), person("notes")),
            (1, 0, 0)
        );
        Ok(())
    }

    #[test]
    fn context_raises_weak_patterns() -> Result<()> {
        let got = entities("routing number 121000358")?;
        assert!(got.iter().any(|(e, _)| e == "ABA_ROUTING_NUMBER"), "{got:?}");
        let got = entities("the value 121000358")?;
        assert!(!got.iter().any(|(e, _)| e == "ABA_ROUTING_NUMBER"), "{got:?}");
        Ok(())
    }

    fn found(text: &str, entity: &str) -> Result<Vec<String>> {
        Ok(entities(text)?
            .into_iter()
            .filter(|(e, _)| e == entity)
            .map(|(_, v)| v)
            .collect())
    }

    /// Each text's findings, as (entity, value), but dates, names and places.
    fn identifiers(text: &str) -> Result<Vec<(String, String)>> {
        Ok(entities(text)?
            .into_iter()
            .filter(|(e, _)| !["DATE_TIME", "PERSON", "LOCATION", "ADDRESS"].contains(&e.as_str()))
            .collect())
    }

    /// A JSON string holding JSON keeps its inner escapes as text when it is logged, and a
    /// value typed in full-width forms is the value: each is read decoded, found on what is
    /// written.
    #[test]
    fn escapes_of_codes_and_full_width_forms_are_read() -> Result<()> {
        for (text, want) in [
            (
                r#"payload="{\"email\":\"jo.beck\u0040example.com\"}""#,
                one("EMAIL_ADDRESS", r"jo.beck\u0040example.com"),
            ),
            (
                r"to=jo.beck\x40example.com",
                one("EMAIL_ADDRESS", r"jo.beck\x40example.com"),
            ),
            (
                r#"{\"card\":\"\u0034000 0566 5566 5556\"}"#,
                one("CREDIT_CARD", r"\u0034000 0566 5566 5556"),
            ),
            (
                "card ４０００ ０５６６ ５５６６ ５５５６ ok",
                one("CREDIT_CARD", "４０００ ０５６６ ５５６６ ５５５６"),
            ),
            (
                "mail ｚｚ＠ｅｘａｍｐｌｅ．ｏｒｇ",
                one("EMAIL_ADDRESS", "ｚｚ＠ｅｘａｍｐｌｅ．ｏｒｇ"),
            ),
            (
                "ip＝２０３．０．１１３．７",
                one("IP_ADDRESS", "２０３．０．１１３．７"),
            ),
            // what an escape writes stands apart from what follows, whatever it is: NUL, a
            // surrogate alone, a byte that begins no character, a letter that is no address's
            (r"card \u00004111111111111111", one("CREDIT_CARD", "4111111111111111")),
            (
                r"card \U000000004111111111111111",
                one("CREDIT_CARD", "4111111111111111"),
            ),
            (r"ssn \ud800536-90-4399", one("US_SSN", "536-90-4399")),
            (
                r"iban \xffDE89370400440532013000",
                one("IBAN_CODE", "DE89370400440532013000"),
            ),
            (
                "iban=%FFDE89370400440532013000",
                one("IBAN_CODE", "DE89370400440532013000"),
            ),
            (
                r"card \U0000D8004111111111111111",
                one("CREDIT_CARD", "4111111111111111"),
            ),
            (
                r"card \UFFFFFFFF4111111111111111",
                one("CREDIT_CARD", "4111111111111111"),
            ),
            (
                r"card \a4111111111111111 \b4000056655665556",
                vec![
                    ("CREDIT_CARD".to_owned(), "4111111111111111".to_owned()),
                    ("CREDIT_CARD".to_owned(), "4000056655665556".to_owned()),
                ],
            ),
            (
                r"to jo\fsmith@example.com \u0040",
                one("EMAIL_ADDRESS", "smith@example.com"),
            ),
            // and without one: the letter of an escaped control character is the escape's
            (r"see \nsmith@example.com", one("EMAIL_ADDRESS", "smith@example.com")),
            (r"see \tsmith@example.com", one("EMAIL_ADDRESS", "smith@example.com")),
            (r"see \\nsmith@example.com", one("EMAIL_ADDRESS", "nsmith@example.com")),
            (r"card \xe24111111111111111", one("CREDIT_CARD", "4111111111111111")),
            (
                r"card \u00004000 0566 5566 5556",
                one("CREDIT_CARD", "4000 0566 5566 5556"),
            ),
            (
                r"contact jo\u00a0smith@example.com now",
                one("EMAIL_ADDRESS", "smith@example.com"),
            ),
            (
                r"mail \u2603smith@example.com",
                one("EMAIL_ADDRESS", "smith@example.com"),
            ),
            (
                r"mail \ud83d\ude00smith@example.com",
                one("EMAIL_ADDRESS", "smith@example.com"),
            ),
            (
                r"to jo\nsmith@example.com \u0040",
                one("EMAIL_ADDRESS", "smith@example.com"),
            ),
        ] {
            assert_eq!(identifiers(text)?, want, "{text}");
        }
        Ok(())
    }

    #[test]
    fn numbers_named_as_another_identifier_are_that_identifier() -> Result<()> {
        for (text, want) in [
            // an NHS number that fits the US plan, named before it or by its field
            ("your NHS number is 970 222 0882. Please", one("UK_NHS", "970 222 0882")),
            ("nhs_number=772-944-2736 requested_by=x", one("UK_NHS", "772-944-2736")),
            (
                "itin=921-54-3735 ssn_spouse=099306647 phone=(201) 340-0805 ref",
                vec![
                    ("US_ITIN".to_owned(), "921-54-3735".to_owned()),
                    ("US_SSN".to_owned(), "099306647".to_owned()),
                    ("PHONE_NUMBER".to_owned(), "(201) 340-0805".to_owned()),
                ],
            ),
            ("{\"nhsNumber\": \"321 691 3252\"}", one("UK_NHS", "321 691 3252")),
            // a Luhn-valid NIR is no card after its name
            (
                "Numéro de sécurité sociale : 199093349508677",
                one("FR_NIR", "199093349508677"),
            ),
            // the key before a value is no context of it when the value's own key names it
            (
                "{\"mobil\":\"+4915203787468\",\"steuerId\":\"32159046377\"}",
                vec![
                    ("PHONE_NUMBER".to_owned(), "+4915203787468".to_owned()),
                    ("DE_TAX_ID".to_owned(), "32159046377".to_owned()),
                ],
            ),
        ] {
            assert_eq!(identifiers(text)?, want, "{text}");
        }
        Ok(())
    }

    #[test]
    fn a_name_of_another_identifier_never_loses_a_finding() -> Result<()> {
        // a phone or card named as another identifier that is not one stays what it is;
        // a field named with a word of its own entity is its field
        for (text, entity, value) in [
            ("Campus Security: +1 212 555 0147", "PHONE_NUMBER", "+1 212 555 0147"),
            ("Tax: +49 30 1234567", "PHONE_NUMBER", "+49 30 1234567"),
            ("the NHS number is 020 7946 0018", "PHONE_NUMBER", "020 7946 0018"),
            (
                "social security number 4111 1111 1111 1111",
                "CREDIT_CARD",
                "4111 1111 1111 1111",
            ),
            ("id,security_phone\n1,020 7946 0018\n", "PHONE_NUMBER", "020 7946 0018"),
            ("{\"taxCard\": \"5555555555554444\"}", "CREDIT_CARD", "5555555555554444"),
        ] {
            assert_eq!(found(text, entity)?, [value], "{text}");
        }
        // bare digits of a possible length only: a phone only in a field about phones
        assert_eq!(
            found("{\"phone_number\": \"4537229742\"}", "PHONE_NUMBER")?,
            ["4537229742"]
        );
        for key in [
            "phone_ext",
            "phone_verified_at",
            "tel_count",
            "phone_country",
            "telephone_id",
        ] {
            let text = format!("{{\"{key}\": \"4537229742\"}}");
            assert_eq!(found(&text, "PHONE_NUMBER")?, Vec::<String>::new(), "{text}");
        }
        Ok(())
    }

    #[test]
    fn words_inside_an_address_are_no_context() -> Result<()> {
        assert_eq!(
            identifiers("Jo\t2858991920666\tjo.beck+bank@example.com")?,
            [("EMAIL_ADDRESS".to_owned(), "jo.beck+bank@example.com".to_owned())]
        );
        assert_eq!(
            found("bank: 2858991920666 jo@example.com", "US_BANK_NUMBER")?,
            ["2858991920666"]
        );
        Ok(())
    }

    #[test]
    fn a_yielding_finding_yields_only_to_a_whole_reported_identifier() -> Result<()> {
        // at any minimum score: not to a weak fragment (a 0.01 driver's licence on
        // `569023`), nor to a 0.05 bank number over the whole
        let all = Scanner::builder().min_score(0.0).build()?;
        for (text, entity, value) in [
            ("steuer nummer 0371 569023", "PHONE_NUMBER", "0371 569023"),
            ("{\"tax_id\":\"+49 30 12345678\"}", "PHONE_NUMBER", "+49 30 12345678"),
            ("my ssn is 4111111111111111", "CREDIT_CARD", "4111111111111111"),
        ] {
            let got: Vec<_> = all
                .scan(text.as_bytes())
                .into_iter()
                .filter(|f| f.start < text.len())
                .map(|f| (f.entity_type.to_string(), text[f.start..f.end].to_owned()))
                .collect();
            assert!(got.contains(&(entity.to_owned(), value.to_owned())), "{text}: {got:?}");
        }
        // values glued to a prefix by a dash stay found
        assert_eq!(found("Tel-0371 569023", "PHONE_NUMBER")?, ["0371 569023"]);
        assert_eq!(found("CC-4111111111111111", "CREDIT_CARD")?, ["4111111111111111"]);
        Ok(())
    }

    #[test]
    fn lookalikes_of_addresses_and_numbers() -> Result<()> {
        // the first four parts of an OID or a version are no address, nor a version a phone
        for text in [
            "snmp oid 1.3.6.1.4.1.41248.2.25 from",
            "agent 10.0.19586.467 snmp",
            "okhttp/1033.9.24.9301",
        ] {
            assert_eq!(identifiers(text)?, [], "{text}");
        }
        assert_eq!(found("from 10.0.0.1. Next", "IP_ADDRESS")?, ["10.0.0.1"]);
        // a domain in Unicode
        assert_eq!(
            found(
                "reply to hunter.patel@bücher.de. Or <siobhan@straße.berlin>",
                "EMAIL_ADDRESS"
            )?,
            ["hunter.patel@bücher.de", "siobhan@straße.berlin"]
        );
        // a table written with pipes: the email is its own cell, the others stay theirs
        assert_eq!(
            identifiers("Jo Beck|+44 20 7946 0018|4111 1111 1111 1111|jo_beck@example.com")?,
            [
                ("PHONE_NUMBER".to_owned(), "+44 20 7946 0018".to_owned()),
                ("CREDIT_CARD".to_owned(), "4111 1111 1111 1111".to_owned()),
                ("EMAIL_ADDRESS".to_owned(), "jo_beck@example.com".to_owned()),
            ]
        );
        Ok(())
    }

    #[test]
    fn phones_as_people_write_them() -> Result<()> {
        for (text, phone) in [
            // extensions
            ("call 206.269.0743x9150 today", "206.269.0743x9150"),
            ("tel. +1-780-563-6083 ext.77", "+1-780-563-6083 ext.77"),
            ("call 415-555-2671 x 12 now", "415-555-2671 x 12"),
            // an extension word standing apart is in the span when nothing after it could
            // go on with a number; left out, the number found, when what follows is
            // another number, an amount or a longer code
            ("tel. +1-780-563-6083 ext. 77", "+1-780-563-6083 ext. 77"),
            ("Telefon 030 1234567 Durchwahl 12", "030 1234567 Durchwahl 12"),
            ("appelez le 01 42 68 53 00 poste 4", "01 42 68 53 00 poste 4"),
            ("chiamare 02 1211 8915 int. 1804.", "02 1211 8915 int. 1804"),
            ("Call 415-555-2671 ext. 77 34 today", "415-555-2671"),
            ("415-555-2671 ext. 1234567", "415-555-2671"),
            ("415-555-2671 ext. 77a", "415-555-2671"),
            // ranges the plan leaves unassigned or reserves for fiction, written as numbers
            ("+44 1632 960 668", "+44 1632 960 668"),
            ("call (558)817-9360x729", "(558)817-9360x729"),
            ("Rückruf unter +49(0) 729830887", "+49(0) 729830887"),
            ("mobile: +44(0)115 496 0092, email", "+44(0)115 496 0092"),
            ("klant Mika, mobiel (016)-6514261, e-mail", "(016)-6514261"),
            ("Rückruf erbeten unter +49(0)3147759091. (2021", "+49(0)3147759091"),
            ("tel. 089 / 123 456 78", "089 / 123 456 78"),
            ("Handy 0171-1234567 bitte", "0171-1234567"),
            // a table as text: the column's header is the context
            (
                "Name;E-Mail;Telefon;Karte\nJo Beck;jo@example.com;0285361092;4111",
                "0285361092",
            ),
            // national, bare, with a context word of its language
            ("Merci de contacter Luc au 0371569023", "0371569023"),
            ("cliente Letizia Giusti, cellulare 3292175135", "3292175135"),
            // in a CSV row before a column of digits: no amount (`12.345.678,90`)
            ("Jo Beck,jo@example.com,212.283.0460,2704 3214", "212.283.0460"),
            ("phone 212.283.0460x757,4592522839972964", "212.283.0460x757"),
            // bare digits of a possible length only (453 is no US area code), in a field
            // named so
            ("name,email,phone\nJo Beck,jo@example.com,4537229742\n", "4537229742"),
            (
                "{\"email\": \"jo@example.com\", \"phone\": \"4537229742\"}",
                "4537229742",
            ),
            // before a log line's timestamp: no longer run of digit groups
            (
                "portable : +33 1 55 69 22 78 2023-04-19T05:07:14.674555Z INFO",
                "+33 1 55 69 22 78",
            ),
            ("tel 020 7946 0018 10:30 today", "020 7946 0018"),
            // Brazil's area code in parentheses, no trunk prefix
            ("Telefone: (11) 2382-5540", "(11) 2382-5540"),
            ("jürgen: +55 (11) 2382-5540", "+55 (11) 2382-5540"),
            ("celular (21) 98765-4321", "(21) 98765-4321"),
            // bare, valid, beside a word for calling
            ("mi chiami al 3572406080", "3572406080"),
        ] {
            assert_eq!(found(text, "PHONE_NUMBER")?, [phone], "{text}");
        }
        assert_eq!(
            found("Main 415-555-2671 ext. 12 415-555-2672 ext. 13", "PHONE_NUMBER")?,
            ["415-555-2671", "415-555-2672 ext. 13"]
        );
        // a national id named by another's name yields to that one (both numbers pass both
        // checksums; each line's name is context for the other line's number too)
        assert_eq!(
            identifiers("BSN: 123456782\nTFN: 817239108\n")?,
            [
                ("NL_BSN".to_owned(), "123456782".to_owned()),
                ("AU_TFN".to_owned(), "817239108".to_owned())
            ]
        );
        // a line says what its number is: a name on the line before is no context for it
        assert!(
            identifiers("Patient BSN: 234567818\nOrder total 314159265 items\n")?
                .iter()
                .all(|(_, v)| v == "234567818")
        );
        // ... but a value alone on its line reads the label above it
        assert_eq!(found("Telefon:\n030 1234567\n", "PHONE_NUMBER")?, ["030 1234567"]);
        // numbers with a decimal point each, amounts beside a currency, ids of orders
        for text in [
            "0.123 0.456 0.789",
            "paid 39.99 129.00",
            "Montant : 12 345 678 €",
            "Umsatz: 12.345.678 EUR",
            "CHF 1 234 567",
            "Order ID: 0171 2345678",
            "Ticket-ID: 0171 2345678",
            "{\"order_id\": \"0171 2345678\"}",
            "{\"ticketId\": \"0171 2345678\"}",
            "Kunden-Nr. 0171 2345678",
            "value 609 940 259 490",
        ] {
            assert!(identifiers(text)?.is_empty(), "{text}: {:?}", identifiers(text)?);
        }
        // an extension word in capitals
        assert_eq!(
            found("Phone: +1 415 555 0123 Ext. 77", "PHONE_NUMBER")?,
            ["+1 415 555 0123 Ext. 77"]
        );
        // a phone's shape in the tail of a named identifier yields to it
        assert_eq!(
            identifiers("Aadhaar 8347 0425 8938")?,
            one("IN_AADHAAR", "8347 0425 8938")
        );
        // an extension after a word standing apart, when nothing goes on after it
        for (text, phone) in [
            ("Phone: 415-555-2671 ext. 123", "415-555-2671 ext. 123"),
            ("Tel: +49 30 12345678 Durchwahl 12", "+49 30 12345678 Durchwahl 12"),
            ("Tél : +33 1 42 68 53 00 poste 12.", "+33 1 42 68 53 00 poste 12"),
        ] {
            assert_eq!(found(text, "PHONE_NUMBER")?, [phone], "{text}");
        }
        // numbers that a label names as something else
        for text in [
            "build 932196-3168",
            "order #48213-9921",
            "invoice 3079/244026",
            "SKU 633-1912-845",
            "Bestellnummer 8485789333",
            "commande n° 0371569023",
            "ticket: +44 1632 960 668",
            "Vertragsnummer 030 1234567",
            "Aktenzeichen: 030 1234567",
            "Sendungsnummer 030 1234567",
            "réf. 030 1234567",
            "referencia 030 1234567",
            "riferimento 030 1234567",
            "klantnummer 030 1234567",
            "PO 030 1234567",
            // the tail of a labelled run of groups
            "Order 194 096 1055",
            "Invoice 2024 0315 0042",
            "ticket 123 089 1234567",
            // the middle of a longer run of groups
            "3511 1648 0652 7107",
            // ranges, decimals, coordinates, amounts
            "pages 38113-47753",
            "Location 52.520008, 13.404954",
            "took 18.785075 s",
            "Summe 362.975.591,42 EUR",
            "Total 12.345.678,90 EUR",
            "Summe 1.234.567,5",
            // another identifier's name
            "CPR-nummer 091291-5185",
            "SSN: 078-05-1123",
            // bare digits of a possible length only: not even beside a context word, nor
            // in a field of another name
            "call 4537229742 now",
            "name,email,account\nJo Beck,jo@example.com,4537229742\n",
            "{\"phone_ext\": 12, \"order\": \"4537229742\"}",
            // a card's first groups, its last glued to a word
            "3511 1648 0652 7107abc",
            // Brazil's shape without a word for calling
            "(12) 3456-7890 items",
            "season (11) 2020-2021 results",
            // `ring` is no word for calling here (a ring buffer, a kernel's ring 3)
            "ring buffer size 4155550132 bytes",
        ] {
            assert_eq!(found(text, "PHONE_NUMBER")?, Vec::<String>::new(), "{text}");
        }
        Ok(())
    }

    /// IBANs typed in lower case are found (below a written one's score); mixed case, a
    /// failed checksum or a lower-case code glued to more are not.
    #[test]
    fn lower_case_ibans() -> Result<()> {
        for iban in ["de89 3704 0044 0532 0130 00", "gb82west12345698765432"] {
            assert_eq!(
                identifiers(&format!("my iban is {iban} thanks"))?,
                one("IBAN_CODE", iban)
            );
        }
        for text in [
            "my iban is De89 3704 0044 0532 0130 00",
            "my iban is de89 3704 0044 0532 0130 01",
            "sha de89370400440532013000ab",
        ] {
            assert!(found(text, "IBAN_CODE")?.is_empty(), "{text}");
        }
        Ok(())
    }

    /// A card after a label is the order's number, unless a card or payment word stands by
    /// it: then the order was paid with it.
    #[test]
    fn a_card_word_outweighs_a_label() -> Result<()> {
        let card = "4532 0151 1283 0366";
        for text in [
            format!("Order: {card} (Visa)"),
            format!("Bestellung {card} mit Kreditkarte bezahlt"),
            format!("Commande n° {card} payée par carte"),
        ] {
            assert_eq!(found(&text, "CREDIT_CARD")?, [card], "{text}");
        }
        for text in [
            format!("Order: {card}"),
            format!("Invoice {card} shipped"),
            // the payment word on the next line is another sentence's
            format!("tracking {card}\nLa pagamento con carta è stata rifiutata"),
        ] {
            assert!(found(&text, "CREDIT_CARD")?.is_empty(), "{text}");
        }
        Ok(())
    }

    #[test]
    fn a_label_names_a_number_as_no_national_id() -> Result<()> {
        assert_eq!(found("order #18682-5510 SSN 196-21-5512", "US_SSN")?, ["196-21-5512"]);
        assert!(found("Bestellnummer 9367493282", "UK_NHS")?.is_empty());
        // weak checksums need their word
        assert!(found("ref 936 749 3282", "UK_NHS")?.is_empty());
        assert!(found("Rufnummer 00452386891 erreichbar", "PL_PESEL")?.is_empty());
        assert_eq!(found("numer PESEL 44051401359", "PL_PESEL")?.len(), 1);
        assert!(found("commande n° 313466824, SSN on file", "US_SSN")?.is_empty());
        assert_eq!(
            found("NHS number 936 749 3282", "UK_NHS")?.len(),
            1,
            "unlabelled, found"
        );
        Ok(())
    }

    /// A date of birth is named in the six languages of the context words (the date alone
    /// scores below the default minimum).
    #[test]
    fn dates_of_birth_in_six_languages() -> Result<()> {
        for text in [
            "Date of birth: 14/03/1985",
            "Geburtsdatum 14.03.1985",
            "Né le 14/03/1985 à Lyon",
            "fecha de nacimiento: 14/03/1985",
            "data di nascita 14/03/1985",
            "geboortedatum 14-03-1985",
            "{\"geburtsdatum\": \"14.03.1985\"}",
        ] {
            assert_eq!(found(text, "DATE_TIME")?.len(), 1, "{text}");
        }
        assert!(found("Release 14.03.1985", "DATE_TIME")?.is_empty());
        Ok(())
    }

    #[test]
    fn cards_outside_the_issuers_ranges_need_a_payment_word() -> Result<()> {
        // Luhn-valid, 35 but outside JCB's 3528-3589
        for text in [
            "Payment failed for NAME using 3597-9349-0148-7937;",
            "Die Karte 3597 9349 0148 7937 wurde abgelehnt.",
            "Le paiement par carte 3597934901487937 a été refusé",
            // any first digit when grouped as cards print them
            "Payment card: 9988 7766 5544 3325",
            "paid with card 1234 5678 9012 3452",
            "Zahlung mit Karte 7000 1234 5678 9010",
            "carta 7000-1234-5678-9010 addebitata",
            "charge 9000 123456 78904 declined",
        ] {
            let cards = found(text, "CREDIT_CARD")?;
            assert_eq!(cards.len(), 1, "{text}");
            assert!(cards[0].len() >= 16, "{text}: {cards:?}");
        }
        assert!(found("ref 3597934901487937", "CREDIT_CARD")?.is_empty());
        // barcodes, parcels and lists of numbers are no cards
        for text in [
            "sku,ean,price\nA-1,4637866537447,9.99\n",
            "{\"gtin\": \"4168337206826\", \"card\": \"none\"}",
            "paid; values: 5 6 8 9 1 2 3 4 6 7 1 1",
            "Tracking 1Z 628 900 28 7721 753 5, paid by card",
            "Sendung 1Z 612 018 36 6752 545 9",
            "Sendungsverfolgung: JJD 0001 2345 6789 01",
        ] {
            assert!(identifiers(text)?.is_empty(), "{text}: {:?}", identifiers(text)?);
        }
        // without a payment word, or not grouped as a card is, no card
        assert!(found("Reference 9988 7766 5544 3325", "CREDIT_CARD")?.is_empty());
        assert!(found("paid order 9988776655443325", "CREDIT_CARD")?.is_empty());
        assert!(found("paid, lot 998 877 665 544 332 5", "CREDIT_CARD")?.is_empty());
        assert!(
            found("tracking 4111111111111111", "CREDIT_CARD")?.is_empty(),
            "a label says what it is"
        );
        Ok(())
    }

    #[test]
    fn context_words_are_written_in_lower_case() -> Result<()> {
        // a context word's evidence is written as the first list holding it wrote it
        let regions = [String::from("US")];
        for r in builtin::all(&regions)? {
            for w in r.context() {
                assert_eq!(*w, w.to_ascii_lowercase(), "{}", r.entity());
            }
        }
        Ok(())
    }

    #[test]
    fn unknown_entity_is_an_error() {
        assert!(matches!(
            Scanner::builder().entities(["NOPE"]).build(),
            Err(Error::UnknownEntity(_))
        ));
        assert!(Scanner::builder().min_score(1.5).build().is_err());
    }

    #[test]
    fn no_panic_on_arbitrary_bytes() -> Result<()> {
        let s = Scanner::builder().min_score(0.0).build()?;
        let mut data = Vec::new();
        for i in 0..20_000u32 {
            data.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
        }
        let _ = s.scan(&data);
        let _ = s.scan(b"");
        let _ = s.scan("é@é.é 12:: ::: 1.1.1.1.1 \u{10FFFF} +44".as_bytes());
        Ok(())
    }
}
