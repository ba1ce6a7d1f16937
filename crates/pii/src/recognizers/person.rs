//! PERSON: people's names, from first and last names of many countries (`data/`), titles and
//! the words that introduce a name in several languages (`Herr`, `Mme`, `Sig.ra`, `cliente`,
//! `klant`, `Dear`), and the field a value stands in (a `nombre` column, a `"Name"` key).
//!
//! A name is one to six words: capitalized words (`Müller`, `Rodrigo-Pozuelo`, `D'Angelo`),
//! initials (`M.`) and, between them, the particles of family names (`van der`, `de la`,
//! `di`, `von`). Three ways make such words a finding:
//! - a first name of the lists and, optionally, more name words (`Violetta Flantz`);
//! - a title or an introducing word just before (`Frau Römer`, `klant Noud Boetet`): two
//!   name words, or one of the lists (`cliente Nueva` alone is not a name; weak titles such
//!   as `Pan` or `Bay` always need a listed name);
//! - a whole cell or JSON value under a name field (`nombre;correo` over `Elisabet Pagès
//!   Quintanilla;...`, `{"naam": "Fabiënne van Brenen"}`), unless the field names a thing
//!   (`company_name`, `file name`).

use std::sync::LazyLock;

use rustc_hash::FxHashSet;

use super::language::{Word, as_str, capitalized, joined, list, words_of};
use super::{Hit, Meta, Recognizer, Tier, words};
use crate::context::Fields;
use crate::finding::{Evidence, EvidenceKind};

/// First names of the US census and common Arabic ones: the lists whose names are rarely
/// words too, so that one alone is a (weak) finding.
static US_FIRST_NAMES: LazyLock<FxHashSet<&'static str>> = LazyLock::new(|| {
    list(include_str!("../../data/first_names.txt"))
        .chain(ARABIC_FIRST.iter().copied())
        .collect()
});
/// Every first name.
static FIRST_NAMES: LazyLock<FxHashSet<&'static str>> = LazyLock::new(|| {
    list(include_str!("../../data/first_names.txt"))
        .chain(list(include_str!("../../data/intl_first_names.txt")))
        .chain(ARABIC_FIRST.iter().copied())
        .collect()
});
static LAST_NAMES: LazyLock<FxHashSet<&'static str>> = LazyLock::new(|| {
    list(include_str!("../../data/last_names.txt"))
        .chain(list(include_str!("../../data/intl_last_names.txt")))
        .chain(ARABIC_LAST.iter().copied())
        .collect()
});

/// Common Arabic given names as they are written in Latin letters (several spellings each);
/// none of the package lists has them romanized.
const ARABIC_FIRST: &[&str] = &[
    "Mohammed",
    "Muhammad",
    "Mohamed",
    "Mohammad",
    "Ahmed",
    "Ahmad",
    "Ali",
    "Omar",
    "Umar",
    "Hassan",
    "Hasan",
    "Hussein",
    "Husain",
    "Youssef",
    "Yusuf",
    "Yousef",
    "Ibrahim",
    "Khalid",
    "Khaled",
    "Abdullah",
    "Abdallah",
    "Abdulrahman",
    "Abdelaziz",
    "Mahmoud",
    "Mahmud",
    "Mustafa",
    "Mostafa",
    "Tariq",
    "Tarek",
    "Karim",
    "Kareem",
    "Samir",
    "Sameer",
    "Walid",
    "Waleed",
    "Faisal",
    "Fahad",
    "Saeed",
    "Said",
    "Salim",
    "Saleh",
    "Hamza",
    "Bilal",
    "Anas",
    "Amr",
    "Ayman",
    "Nabil",
    "Rashid",
    "Rachid",
    "Jamal",
    "Adel",
    "Adil",
    "Ziad",
    "Ziyad",
    "Majid",
    "Nasser",
    "Yasser",
    "Yasir",
    "Imad",
    "Osama",
    "Usama",
    "Mounir",
    "Fatima",
    "Fatma",
    "Aisha",
    "Aicha",
    "Ayesha",
    "Maryam",
    "Mariam",
    "Zainab",
    "Zaynab",
    "Khadija",
    "Khadijah",
    "Noor",
    "Nour",
    "Layla",
    "Leila",
    "Laila",
    "Amina",
    "Aminah",
    "Salma",
    "Huda",
    "Hoda",
    "Rania",
    "Yasmin",
    "Yasmine",
    "Jasmin",
    "Samira",
    "Nadia",
    "Hanan",
    "Dalia",
    "Rana",
    "Reem",
    "Rim",
    "Lina",
    "Hiba",
    "Heba",
    "Asma",
    "Sara",
    "Sana",
    "Souad",
    "Latifa",
    "Malak",
    "Jana",
    "Ghada",
    "Mona",
];

/// Common Arabic family names in Latin letters.
const ARABIC_LAST: &[&str] = &[
    "Haddad",
    "Khoury",
    "Khouri",
    "Nasser",
    "Mansour",
    "Hamdan",
    "Saleh",
    "Salem",
    "Ibrahim",
    "Hussein",
    "Hassan",
    "Abdullah",
    "Aziz",
    "Khalil",
    "Youssef",
    "Mahmoud",
    "Mustafa",
    "Farouk",
    "Qasim",
    "Kassem",
    "Hamad",
    "Hamid",
    "Rahman",
    "Sultan",
    "Suleiman",
    "Sulaiman",
    "Bakr",
    "Othman",
    "Osman",
    "Habib",
    "Nassar",
    "Awad",
    "Darwish",
    "Jaber",
    "Jabir",
    "Shaheen",
    "Chahine",
    "Karam",
    "Naser",
    "Zaki",
    "Al-Sayed",
    "El-Sayed",
    "Al-Masri",
    "El-Masri",
    "Al-Amin",
    "Al-Hashimi",
    "Al-Rashid",
    "Al-Farsi",
    "Al-Harbi",
    "Al-Qahtani",
    "Al-Ghamdi",
    "Al-Zahrani",
    "Al-Shehri",
    "Al-Otaibi",
    "Al-Mutairi",
    "Benali",
    "Benmoussa",
    "Bennani",
    "Belkacem",
    "Bouzid",
    "Alaoui",
    "Idrissi",
    "Tazi",
    "Cherif",
];

/// First names that are also everyday words: alone they prove nothing.
const AMBIGUOUS_FIRST: &[&str] = &[
    "Will",
    "May",
    "June",
    "April",
    "August",
    "Mark",
    "Bill",
    "Hope",
    "Grant",
    "Rose",
    "Joy",
    "Faith",
    "Art",
    "Pat",
    "Don",
    "Ray",
    "Guy",
    "Jack",
    "Frank",
    "Gene",
    "Chase",
    "Reed",
    "Price",
    "Rich",
    "Summer",
    "Dawn",
    "Miles",
    "Max",
    "Lane",
    "Page",
    "Ward",
    "Young",
    "Long",
    "Bell",
    "King",
    "Major",
    "Sterling",
    "Christian",
    "China",
    "Paris",
    "Georgia",
    "Virginia",
    "Carolina",
    "Florida",
    "Dakota",
    "Austin",
    "Houston",
    "Jackson",
    "Lincoln",
    "Washington",
    "Sunny",
    "Star",
    "Crystal",
    "Ruby",
    "Pearl",
    "Amber",
    "Ivy",
    "Iris",
    "Lily",
    "Daisy",
    "Holly",
    "Olive",
    "Angel",
    "Buck",
    "Bud",
    "Cliff",
    "Clay",
    "Dale",
    "Glen",
    "Heath",
    "Drew",
    "Lou",
    "Norm",
    "Sandy",
    "Stone",
    "Wade",
    "Penny",
    "Kit",
    "Cherry",
    "Honey",
    "Candy",
    "Misty",
    "Storm",
    "Precious",
    "Else",
    "Said",
    "Love",
    "Ok",
    "An",
    "In",
    "Bee",
    "See",
    "Ma",
    "My",
    "So",
    "Le",
    "La",
    "Do",
    "Tom",
    "Hunter",
    "Carter",
    "Parker",
    "Taylor",
    "Tyler",
    "Jordan",
    "Morgan",
    "Madison",
    "Mason",
    "Cooper",
    "Sky",
    "Autumn",
    "Winter",
    "Spring",
    "Harmony",
    "Marine",
    "Lady",
    "Royal",
    "Noble",
    "Wanda",
    "Hannah",
    "Early",
    "Sharon",
    "Sun",
    "Can",
    "Her",
    "His",
    "Lee",
    "Jean",
];
/// Titles written before a name, as written (case counts: `Pan` is a title, `pan` is not).
/// `(title, strong)`: a weak title (an everyday word too: `Pan`, `Bay`, `Don`, `M`) makes a
/// name only of a listed first or last name.
const TITLES: &[(&str, bool)] = &[
    ("Mr", true),
    ("Mrs", true),
    ("Ms", true),
    ("Miss", false),
    ("Mx", true),
    ("Dr", true),
    ("Prof", true),
    ("Sir", false),
    ("Madam", false),
    ("Dame", false),
    ("Lord", false),
    ("Lady", false),
    // German
    ("Herr", true),
    ("Frau", true),
    ("Hr", false),
    ("Fr", false),
    ("Ing", true),
    ("Dipl", true),
    // French
    ("Mme", true),
    ("Mlle", true),
    ("Mmes", true),
    ("M", false),
    ("Me", false),
    // Spanish, Portuguese
    ("Sr", true),
    ("Sra", true),
    ("Srta", true),
    ("Dra", true),
    ("Don", false),
    ("Doña", true),
    ("Dña", true),
    // Italian (`Sig.ra`, `Dott.ssa`: the suffix after the dot is read with the title)
    ("Sig", true),
    ("Sigg", true),
    ("Dott", true),
    ("Avv", true),
    // Dutch
    ("Dhr", true),
    ("Mevr", true),
    ("Mw", false),
    ("Ir", false),
    ("Drs", true),
    // Polish, Turkish
    ("Pan", false),
    ("Pani", false),
    ("Bay", false),
    ("Bayan", false),
];

const NAME_SUFFIXES: &[&str] = &["Jr", "Sr", "II", "III", "IV", "MD", "DDS", "PhD", "DVM", "Esq", "MBA"];

/// Words after which a name follows (compared in lower case): roles, greetings, the word
/// "name" itself, in English, German, French, Spanish, Italian and Dutch.
const INTRODUCERS: &[&str] = &[
    "customer",
    "client",
    "patient",
    "employee",
    "contact",
    "cardholder",
    "recipient",
    "holder",
    "dear",
    "name",
    "kunde",
    "kundin",
    "patientin",
    "mitarbeiter",
    "mitarbeiterin",
    "ansprechpartner",
    "ansprechpartnerin",
    "inhaber",
    "inhaberin",
    "karteninhaber",
    "empfänger",
    "liebe",
    "lieber",
    "geehrte",
    "geehrter",
    "cliente",
    "clienta",
    "paciente",
    "empleado",
    "empleada",
    "titular",
    "destinatario",
    "destinataria",
    "estimado",
    "estimada",
    "querido",
    "querida",
    "nombre",
    "contacter",
    "contactez",
    "destinataire",
    "titulaire",
    "employé",
    "employée",
    "cher",
    "chère",
    "nom",
    "paziente",
    "dipendente",
    "titolare",
    "gentile",
    "nome",
    "klant",
    "patiënt",
    "medewerker",
    "houder",
    "kaarthouder",
    "ontvanger",
    "geachte",
    "beste",
    "naam",
];

/// Words of field names whose values are people's names.
const NAME_FIELDS: &[&str] = &[
    "name",
    "names",
    "fullname",
    "firstname",
    "lastname",
    "surname",
    "forename",
    "customer",
    "client",
    "contact",
    "holder",
    "cardholder",
    "vorname",
    "nachname",
    "familienname",
    "kunde",
    "inhaber",
    "karteninhaber",
    "nom",
    "prenom",
    "prénom",
    "titulaire",
    "nombre",
    "apellido",
    "apellidos",
    "cliente",
    "titular",
    "nome",
    "cognome",
    "titolare",
    "naam",
    "voornaam",
    "achternaam",
    "klant",
    "houder",
    "imie",
    "imię",
    "nazwisko",
    "ad",
    "soyad",
    "adsoyad",
    "isim",
];

/// Words of field names whose values are things, not people (`company_name`, `file name`).
const NOT_PERSON_FIELDS: &[&str] = &[
    "company",
    "organization",
    "organisation",
    "org",
    "firma",
    "unternehmen",
    "entreprise",
    "société",
    "empresa",
    "azienda",
    "bedrijf",
    "user",
    "username",
    "login",
    "file",
    "filename",
    "host",
    "hostname",
    "domain",
    "product",
    "produkt",
    "produit",
    "producto",
    "prodotto",
    "brand",
    "marke",
    "street",
    "straße",
    "strasse",
    "rue",
    "calle",
    "via",
    "straat",
    "city",
    "stadt",
    "ville",
    "ciudad",
    "città",
    "country",
    "land",
    "pays",
    "país",
    "paese",
    "bank",
    "event",
    "project",
    "team",
    "group",
    "role",
    "category",
    "tag",
    "device",
    "server",
    "service",
    "app",
    "application",
    "model",
    "plan",
    "queue",
    "shop",
    "store",
    "hotel",
    "school",
    "schule",
    "école",
    "escuela",
    "scuola",
    "school",
];

/// Particles of family names, written in lower case between name words.
const PARTICLES: &[&str] = &[
    "van", "von", "vom", "de", "der", "den", "del", "della", "delle", "dei", "degli", "di", "da", "du", "des", "la",
    "le", "lo", "ten", "ter", "te", "zu", "zum", "zur", "y", "e", "dos", "das", "do", "af", "al", "el", "bin", "ben",
    "ibn", "bint",
];

/// The most words of one name, particles included.
const MOST_WORDS: usize = 6;

/// Capitalized words that stand where a name could and are none (a role followed by
/// `Support Team`, a label followed by `Telefon`): a name's words stop before them.
const NOT_NAME_WORDS: &[&str] = &[
    "Service",
    "Services",
    "Support",
    "Team",
    "Care",
    "Center",
    "Centre",
    "Success",
    "Account",
    "Accounts",
    "Portal",
    "Number",
    "Department",
    "Relations",
    "Experience",
    "Data",
    "Name",
    "Email",
    "Mail",
    "Phone",
    "Card",
    "Order",
    "Ticket",
    "Invoice",
    "Status",
    "Info",
    "Information",
    "Hotline",
    "Desk",
    "Help",
    "Payment",
    "Thanks",
    "Thank",
    "Nummer",
    "Telefon",
    "Karte",
    "Konto",
    "Rechnung",
    "Bestellung",
    "Zahlung",
    "Hilfe",
    "Bitte",
    "Danke",
    "Ihr",
    "Ihre",
    "Sie",
    "Der",
    "Die",
    "Das",
    "Den",
    "Dem",
    "Ein",
    "Eine",
    "Numéro",
    "Téléphone",
    "Carte",
    "Compte",
    "Facture",
    "Commande",
    "Paiement",
    "Aide",
    "Merci",
    "Les",
    "Número",
    "Teléfono",
    "Tarjeta",
    "Cuenta",
    "Factura",
    "Pedido",
    "Pago",
    "Ayuda",
    "Gracias",
    "Los",
    "Las",
    "Numero",
    "Telefono",
    "Carta",
    "Conto",
    "Fattura",
    "Ordine",
    "Pagamento",
    "Aiuto",
    "Grazie",
    "Telefoon",
    "Kaart",
    "Rekening",
    "Factuur",
    "Bestelling",
    "Betaling",
    "Hulp",
    "Bedankt",
    "Het",
    "Een",
];

pub(crate) struct PersonRecognizer {
    meta: Meta,
}

impl PersonRecognizer {
    pub(crate) fn new() -> Self {
        Self {
            meta: Meta::new(
                "PERSON",
                Tier::Language,
                words(&[
                    "name", "named", "mr", "mrs", "ms", "dr", "customer", "patient", "client", "called", "contact",
                    "user", "employee", "dear", "hi", "hello", "signed", "by", "from", "attn", "herr", "frau", "kunde",
                    "kundin", "mme", "cliente", "klant", "nom", "nombre", "nome", "naam",
                ]),
            ),
        }
    }
}

/// What stands just before a name.
#[derive(Debug, Clone, Copy)]
enum Lead {
    None,
    Title { strong: bool },
    Word(&'static str),
}

/// Words of a list by their length in bytes, so that each word of the text is compared with
/// a few at most (every word of a text is looked up).
struct ByLength<T: 'static>(Vec<Vec<(&'static [u8], T)>>);

impl<T: Copy> ByLength<T> {
    fn new(list: impl IntoIterator<Item = (&'static str, T)>) -> Self {
        let mut by_len: Vec<Vec<(&'static [u8], T)>> = Vec::new();
        for (w, v) in list {
            if by_len.len() <= w.len() {
                by_len.resize_with(w.len() + 1, Vec::new);
            }
            by_len[w.len()].push((w.as_bytes(), v));
        }
        Self(by_len)
    }

    fn get(&self, word: &[u8], ignore_case: bool) -> Option<T> {
        let first = *word.first()?;
        // the first byte before the rest: most words differ there, and a call to compare
        // slices costs more than the comparison
        self.0.get(word.len())?.iter().find_map(|&(w, v)| {
            let same = if ignore_case {
                w[0].eq_ignore_ascii_case(&first) && w.eq_ignore_ascii_case(word)
            } else {
                w[0] == first && w == word
            };
            same.then_some(v)
        })
    }
}

static TITLE_SET: LazyLock<ByLength<bool>> = LazyLock::new(|| ByLength::new(TITLES.iter().copied()));
static INTRODUCER_SET: LazyLock<ByLength<&'static str>> =
    LazyLock::new(|| ByLength::new(INTRODUCERS.iter().map(|w| (*w, *w))));

static NOT_NAME_SET: LazyLock<ByLength<()>> = LazyLock::new(|| ByLength::new(NOT_NAME_WORDS.iter().map(|w| (*w, ()))));
static SUFFIX_SET: LazyLock<ByLength<()>> = LazyLock::new(|| ByLength::new(NAME_SUFFIXES.iter().map(|w| (*w, ()))));
static AMBIGUOUS_SET: LazyLock<ByLength<()>> =
    LazyLock::new(|| ByLength::new(AMBIGUOUS_FIRST.iter().map(|w| (*w, ()))));
static PARTICLE_SET: LazyLock<ByLength<()>> = LazyLock::new(|| ByLength::new(PARTICLES.iter().map(|w| (*w, ()))));

fn is_title(t: &str) -> bool {
    TITLE_SET.get(t.as_bytes(), false).is_some()
}

/// The title or introducing word that word `i` is, and the index of the word after it
/// (`Dr. `, `Frau `, `Sig.ra `, `cliente `, `Name: `).
fn lead(text: &[u8], ws: &[Word], i: usize) -> Option<(Lead, usize)> {
    let after = *ws.get(i + 1)?;
    let gap = &text[ws[i].e..after.s];
    // a name starts with a capital (most words of a text are followed by a lower-case word;
    // `Sig.ra` is read as `Sig`, `.`, `ra`)
    if text[after.s].is_ascii_lowercase() && gap != b"." {
        return None;
    }
    let t = &text[ws[i].s..ws[i].e];
    if let Some(strong) = TITLE_SET.get(t, false) {
        if gap == b" " || gap == b". " {
            return Some((Lead::Title { strong }, i + 1));
        }
        // `Sig.ra `, `Dott.ssa `: a lower-case ending after the dot
        let ending = &text[after.s..after.e];
        let then = *ws.get(i + 2)?;
        let gap_then = &text[after.e..then.s];
        return (gap == b"."
            && ending.len() <= 3
            && ending.iter().all(u8::is_ascii_lowercase)
            && (gap_then == b" " || gap_then == b". "))
            .then_some((Lead::Title { strong }, i + 2));
    }
    if !matches!(gap, b" " | b": " | b", " | b":") {
        return None;
    }
    INTRODUCER_SET.get(t, true).map(|w| (Lead::Word(w), i + 1))
}

/// The words of a name from word `start`.
struct Run {
    /// Index of its last word.
    end: usize,
    /// Name words, particles and initials not counted.
    names: usize,
    first_listed: bool,
    last_listed: bool,
    any_listed: bool,
}

fn name_word(t: &str) -> bool {
    capitalized(t)
        && !is_title(t)
        && SUFFIX_SET.get(t.as_bytes(), false).is_none()
        && NOT_NAME_SET.get(t.as_bytes(), false).is_none()
}

fn run(text: &[u8], ws: &[Word], start: usize) -> Option<Run> {
    // most words of a text: not capitalized, so not read as UTF-8
    if text[ws[start].s].is_ascii_lowercase() {
        return None;
    }
    let first = as_str(text, ws[start]);
    if !name_word(first) {
        return None;
    }
    let mut out = Run {
        end: start,
        names: 1,
        first_listed: FIRST_NAMES.contains(first),
        last_listed: false,
        any_listed: false,
    };
    let mut any_listed = out.first_listed || LAST_NAMES.contains(first);
    // the next word joins if it is a name word or an initial, or if particles lead to one
    'grow: while out.end + 1 - start < MOST_WORDS {
        let mut k = out.end + 1;
        while k < ws.len() && k - start < MOST_WORDS && joined(text, ws[k - 1], ws[k]) {
            let bytes = &text[ws[k].s..ws[k].e];
            if bytes[0].is_ascii_lowercase() {
                if PARTICLE_SET.get(bytes, false).is_none() {
                    break;
                }
                k += 1;
                continue;
            }
            let t = as_str(text, ws[k]);
            let initial = t.len() == 1 && t.as_bytes()[0].is_ascii_uppercase() && text.get(ws[k].e) == Some(&b'.');
            if name_word(t) || initial {
                out.end = k;
                if !initial {
                    out.names += 1;
                    any_listed |= FIRST_NAMES.contains(t) || LAST_NAMES.contains(t);
                }
                continue 'grow;
            }
            break;
        }
        break;
    }
    out.last_listed = out.end > start && LAST_NAMES.contains(as_str(text, ws[out.end]));
    out.any_listed = any_listed;
    Some(out)
}

/// Whether a cell of a table (or a JSON value) starts at `s`: only spaces and a quote
/// between it and the line's start or a delimiter.
fn cell_starts(text: &[u8], s: usize) -> bool {
    let mut i = s;
    while i > 0 && text[i - 1] == b' ' {
        i -= 1;
    }
    if i > 0 && text[i - 1] == b'"' {
        i -= 1;
    }
    while i > 0 && text[i - 1] == b' ' {
        i -= 1;
    }
    i == 0
        || matches!(
            text[i - 1],
            b'\n' | b'\r' | b',' | b';' | b'\t' | b'|' | b':' | b'{' | b'['
        )
}

/// Whether the cell that holds a name ends at `e`.
fn cell_ends(text: &[u8], e: usize) -> bool {
    let mut i = e;
    while i < text.len() && text[i] == b' ' {
        i += 1;
    }
    if i < text.len() && text[i] == b'"' {
        i += 1;
    }
    while i < text.len() && text[i] == b' ' {
        i += 1;
    }
    i == text.len() || matches!(text[i], b'\n' | b'\r' | b',' | b';' | b'\t' | b'|' | b'}' | b']')
}

/// A whole cell or value of a name field (a title before the name allowed): the index of the
/// name's last word and the finding.
fn in_name_field(text: &[u8], ws: &[Word], i: usize, fields: &Fields<'_>) -> Option<(usize, Hit)> {
    if !cell_starts(text, ws[i].s) {
        return None;
    }
    let start = match lead(text, ws, i) {
        Some((Lead::Title { .. }, next)) => next,
        _ => i,
    };
    ws.get(start)?;
    let name = run(text, ws, start)?;
    let mut last = name.end;
    while let Some(&next) = ws.get(last + 1)
        && SUFFIX_SET.get(&text[next.s..next.e], false).is_some()
        && matches!(&text[ws[last].e..next.s], b" " | b", " | b". " | b".")
    {
        last += 1;
    }
    let tail = if text.get(ws[last].e) == Some(&b'.') {
        ws[last].e + 1
    } else {
        ws[last].e
    };
    if !cell_ends(text, tail) || (name.names < 2 && !name.any_listed) {
        return None;
    }
    let field = fields.at(text, ws[i].s);
    if field.iter().any(|w| NOT_PERSON_FIELDS.contains(&w.as_str())) {
        return None;
    }
    let word = field.iter().find(|w| NAME_FIELDS.contains(&w.as_str()))?;
    Some((
        name.end,
        Hit::new(
            ws[start].s,
            ws[name.end].e,
            0.85,
            vec![Evidence::new(EvidenceKind::FieldName, word.as_str())],
        ),
    ))
}

/// The finding, if the words of `name` after `lead` make one.
fn judge(text: &[u8], ws: &[Word], lead: Lead, start: usize, name: &Run) -> Option<Hit> {
    let first = as_str(text, ws[start]);
    let several = name.end > start;
    let mut evidence = Vec::new();
    let score = match lead {
        Lead::None => {
            if !name.first_listed || (AMBIGUOUS_SET.get(first.as_bytes(), false).is_some() && !name.last_listed) {
                return None;
            }
            evidence.push(Evidence::new(EvidenceKind::Dictionary, "first_names"));
            match (several, name.last_listed) {
                (true, true) => 0.85,
                (true, false) => 0.6,
                // one first name alone: too weak without context, and none at all when only
                // the international lists hold it (`Floor`, `Carry`, `Maan` are words too)
                (false, _) if US_FIRST_NAMES.contains(first) => 0.3,
                (false, _) => return None,
            }
        }
        Lead::Title { strong } => {
            if !strong && !name.any_listed {
                return None;
            }
            evidence.push(Evidence::new(EvidenceKind::Pattern, "title"));
            match (several, name.last_listed) {
                (true, true) => 0.85,
                (true, false) => 0.6,
                (false, _) => 0.7,
            }
        }
        Lead::Word(word) => {
            if name.names < 2 && !name.any_listed {
                return None;
            }
            evidence.push(Evidence::new(EvidenceKind::Context, word));
            if name.first_listed || name.last_listed {
                0.85
            } else {
                0.6
            }
        }
    };
    if name.first_listed && !matches!(lead, Lead::None) {
        evidence.push(Evidence::new(EvidenceKind::Dictionary, "first_names"));
    }
    if name.last_listed {
        evidence.push(Evidence::new(EvidenceKind::Dictionary, "last_names"));
    }
    Some(Hit::new(ws[start].s, ws[name.end].e, score, evidence))
}

impl Recognizer for PersonRecognizer {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn find(&self, text: &[u8], out: &mut Vec<Hit>) {
        self.find_with_words(text, &words_of(text), &Fields::default(), out);
    }

    fn uses_words(&self) -> bool {
        true
    }

    fn find_with_words(&self, text: &[u8], ws: &[Word], fields: &Fields<'_>, out: &mut Vec<Hit>) {
        let mut i = 0;
        while i < ws.len() {
            if let Some((end, hit)) = in_name_field(text, ws, i, fields) {
                out.push(hit);
                i = end + 1;
                continue;
            }
            let (lead, start) = lead(text, ws, i).unwrap_or((Lead::None, i));
            let found = ws
                .get(start)
                .and_then(|_| run(text, ws, start))
                .and_then(|name| Some((name.end, judge(text, ws, lead, start, &name)?)));
            match found {
                Some((end, hit)) => {
                    out.push(hit);
                    i = end + 1;
                }
                None => i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        PersonRecognizer::new().find(text.as_bytes(), &mut out);
        out.iter().map(|h| text[h.start..h.end].to_owned()).collect()
    }

    fn in_field(text: &str, field: &str) -> Vec<String> {
        let words = crate::context::field_words(field);
        let fields = Fields {
            table: None,
            field: &words,
        };
        let mut out = Vec::new();
        PersonRecognizer::new().find_with_words(text.as_bytes(), &words_of(text.as_bytes()), &fields, &mut out);
        out.iter().map(|h| text[h.start..h.end].to_owned()).collect()
    }

    #[test]
    fn titles_and_introducers_of_six_languages() {
        for (text, name) in [
            ("Kunde Ulla Römer ist unter Telefon erreichbar", "Ulla Römer"),
            ("Bitte rufen Sie Frau Schmidt zurück", "Schmidt"),
            ("Dipl.-Ing. Rosel Hettner", "Rosel Hettner"),
            ("Merci de contacter Luc de Bazin au 04 22 74 85", "Luc de Bazin"),
            ("Mme Élodie Brûlé a appelé", "Élodie Brûlé"),
            ("cliente Balduino Olmo Gelabert, tel. +34 800", "Balduino Olmo Gelabert"),
            ("Sra. Amaya Carvajal Cárdenas", "Amaya Carvajal Cárdenas"),
            ("la Sig.ra Gelsomina Scotti ha pagato", "Gelsomina Scotti"),
            ("Dott.ssa Chiara Ferri", "Chiara Ferri"),
            ("klant Noud Boetet, tel. (0278) 9", "Noud Boetet"),
            ("Dhr. Teun van Dokkum", "Teun van Dokkum"),
            ("Dear Jane Doe-Smith,", "Jane Doe-Smith"),
        ] {
            assert_eq!(run_on(text), vec![name], "{text}");
        }
    }

    #[test]
    fn words_that_introduce_things_are_no_names() {
        for text in [
            // a role then capitalized words that name no one
            "Please contact Customer Support Team today",
            "Der Kunde Service hat angerufen",
            "Kunde Nummer 12345",
            "Sehr geehrte Damen und Herren",
            // a weak title needs a listed name
            "the Bay Area office",
            "a Pan Am flight",
            // a first name of the international lists alone is no finding
            "Floor plans attached",
            "Maan en zon",
        ] {
            assert!(run_on(text).is_empty(), "{text}: {:?}", run_on(text));
        }
    }

    #[test]
    fn a_whole_value_of_a_name_field_is_a_name() {
        assert_eq!(in_field("Violetta Flantz", "customer_name"), vec!["Violetta Flantz"]);
        // made-up names of no list: the field alone makes them names
        assert_eq!(in_field("Zorbak Quintel", "naam"), vec!["Zorbak Quintel"]);
        assert_eq!(in_field("Herr Holger Ruppert", "Name"), vec!["Holger Ruppert"]);
        assert_eq!(in_field("Pero Dippel MBA.", "nombre"), vec!["Pero Dippel"]);
        // a thing's name, or a field of another kind
        assert!(in_field("Acme Widgets", "company_name").is_empty());
        assert!(in_field("Zorbak Quintel", "comment").is_empty());
        // not the whole value
        assert!(in_field("Zorbak Quintel called twice", "name").is_empty());
    }

    #[test]
    fn json_members_and_table_cells_in_text_are_fields() {
        let text = "{\"naam\": \"Zorbak van Quintel\", \"e-mail\": \"x@example.com\"}";
        let mut out = Vec::new();
        let fields = Fields::default();
        PersonRecognizer::new().find_with_words(text.as_bytes(), &words_of(text.as_bytes()), &fields, &mut out);
        let found: Vec<&str> = out.iter().map(|h| &text[h.start..h.end]).collect();
        assert_eq!(found, vec!["Zorbak van Quintel"]);
        let text = "{\"product\": \"Zorbak van Quintel\"}";
        let mut out = Vec::new();
        PersonRecognizer::new().find_with_words(text.as_bytes(), &words_of(text.as_bytes()), &fields, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn people() {
        assert_eq!(run_on("John Oliver is a comedian."), vec!["John Oliver"]);
        assert_eq!(run_on("Richard M. Nixon"), vec!["Richard M. Nixon"]);
        assert_eq!(run_on("They call me Mr. Mayers"), vec!["Mayers"]);
        assert!(run_on("Will you mark the May report?").is_empty());
    }
}
