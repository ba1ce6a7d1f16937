"""A corpus dense with identifiers, in several locales and shapes, with lookalike traps.

Where gen_corpus.py (shared/bench/pii) writes English prose with a few identifiers per
paragraph, this writes what a scanner meets in logs, exports and support tickets: English,
British, German, French, Spanish, Italian and Dutch sentences, CSV rows under localized
headers, JSON objects with localized keys and log lines, most of them carrying identifiers,
and lookalikes that are not personal data (build, order, ticket and invoice numbers, SKUs,
versions, Luhn-failing card-length numbers, timestamps, hashes) mixed in unlabelled.

Output: one {"text", "spans": [[start, end, ENTITY], ...]} per line (character offsets), as
gen_corpus.py writes, so `custodia bench-scan` scores it the same way.
Usage: python gen_dense.py [target_bytes] [seed] > dense.jsonl   (needs `faker`)
"""
import json
import datetime
import random
import sys

from faker import Faker

TARGET = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 7
random.seed(SEED)
Faker.seed(SEED)

# Timestamps from a fixed span, not relative to today (faker's default), so that a seed gives
# the same corpus on every run.
EPOCH = datetime.datetime(2020, 1, 1)


def moment(fake):
    return fake.date_time_between_dates(EPOCH, EPOCH + datetime.timedelta(days=2000)).isoformat()


LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"]
FAKE = {loc: Faker(loc) for loc in LOCALES}

# Per language: words that introduce each kind of identifier, and sentence templates.
WORDS = {
    "en": {"phone": ["phone", "call", "tel.", "mobile"], "card": ["card", "paid with", "payment card"],
           "iban": ["IBAN", "bank account"], "email": ["email", "e-mail"], "name": ["customer", "contact"]},
    "de": {"phone": ["Telefon", "Tel.", "Handy", "Rufnummer"], "card": ["Karte", "Kreditkarte", "Zahlung mit Karte"],
           "iban": ["IBAN", "Bankverbindung"], "email": ["E-Mail"], "name": ["Kunde", "Kundin"]},
    "fr": {"phone": ["téléphone", "tél.", "portable"], "card": ["carte", "carte bancaire", "paiement par carte"],
           "iban": ["IBAN", "compte bancaire"], "email": ["courriel", "e-mail"], "name": ["client", "cliente"]},
    "es": {"phone": ["teléfono", "tel.", "móvil"], "card": ["tarjeta", "pago con tarjeta"],
           "iban": ["IBAN", "cuenta bancaria"], "email": ["correo"], "name": ["cliente"]},
    "it": {"phone": ["telefono", "tel.", "cellulare"], "card": ["carta", "pagamento con carta"],
           "iban": ["IBAN", "conto corrente"], "email": ["email"], "name": ["cliente"]},
    "nl": {"phone": ["telefoon", "tel.", "mobiel"], "card": ["kaart", "betaling met kaart"],
           "iban": ["IBAN", "rekeningnummer"], "email": ["e-mail"], "name": ["klant"]},
}

SENTENCES = {
    "en": ["{name_w} {name} can be reached on {phone_w} {phone} or {email_w} {email}.",
           "Payment failed for {name} using {cc};",
           "Refund {name} to {iban_w} {iban} today.",
           "Login for {email} from {ip} at {ts}.",
           "{phone_w}: {phone}, {email_w}: {email}",
           "Charged {cc} for order {order}.",
           "SSN {ssn} on file for {name}."],
    "de": ["{name_w} {name} ist unter {phone_w} {phone} erreichbar, {email_w}: {email}.",
           "Die {card_w} {cc} wurde abgelehnt.",
           "Bitte überweisen Sie an {iban_w} {iban}.",
           "Rückruf erbeten unter {phone}.",
           "Anmeldung von {ip} für {email} um {ts}."],
    "fr": ["Merci de contacter {name} au {phone} ou par {email_w} {email}.",
           "Le {card_w} {cc} a été refusé pour la commande {order}.",
           "Virement sur {iban_w} {iban} effectué.",
           "{phone_w} : {phone}",
           "Connexion de {email} depuis {ip} le {ts}."],
    "es": ["{name_w} {name}, {phone_w} {phone}, {email_w} {email}.",
           "El {card_w} {cc} fue rechazado.",
           "Transferencia a {iban_w} {iban}."],
    "it": ["{name_w} {name}, {phone_w} {phone}, {email_w} {email}.",
           "La {card_w} {cc} è stata rifiutata.",
           "Bonifico su {iban_w} {iban}."],
    "nl": ["{name_w} {name}, {phone_w} {phone}, {email_w} {email}.",
           "De {card_w} {cc} is geweigerd.",
           "Overboeking naar {iban_w} {iban}."],
}
LANG = {"en_US": "en", "en_GB": "en", "de_DE": "de", "fr_FR": "fr", "es_ES": "es", "it_IT": "it", "nl_NL": "nl"}

CSV_HEADERS = {
    "en": ["name", "email", "phone", "card_number", "iban"],
    "de": ["Name", "E-Mail", "Telefon", "Kartennummer", "IBAN"],
    "fr": ["nom", "courriel", "téléphone", "numéro de carte", "IBAN"],
    "es": ["nombre", "correo", "teléfono", "número de tarjeta", "IBAN"],
    "it": ["nome", "email", "telefono", "numero carta", "IBAN"],
    "nl": ["naam", "e-mail", "telefoon", "kaartnummer", "IBAN"],
}


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def not_luhn(n):
    """A number of n digits that fails the Luhn check (a card-length lookalike)."""
    while True:
        s = "".join(random.choice("0123456789") for _ in range(n))
        if s[0] != "0" and not luhn_ok(s):
            return s


def grouped(s):
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def card(fake):
    number = fake.credit_card_number()
    r = random.random()
    if r < 0.3 and len(number) == 16:
        return grouped(number)
    if r < 0.45 and len(number) == 16:
        return "-".join(number[i:i + 4] for i in range(0, 16, 4))
    return number


# Lookalikes: identifiers that are not personal data, unlabelled.
def trap():
    d = lambda n: "".join(random.choice("0123456789") for _ in range(n))
    return random.choice([
        lambda: f"build {d(6)}-{d(4)}",
        lambda: f"order #{d(5)}-{d(4)}",
        lambda: f"ticket INC{d(7)}",
        lambda: f"invoice {d(4)}/{d(6)}",
        lambda: f"SKU {d(3)}-{d(4)}-{d(3)}",
        lambda: f"version {random.randint(1, 20)}.{random.randint(0, 40)}.{random.randint(0, 99)}",
        lambda: f"ref {not_luhn(16)}",
        lambda: f"tracking {d(12)}",
        lambda: f"sha {''.join(random.choice('0123456789abcdef') for _ in range(40))}",
        lambda: f"Bestellnummer {d(10)}",
        lambda: f"commande n° {d(9)}",
        lambda: f"port {random.randint(1024, 65535)} pid {d(5)}",
        lambda: f"{random.randint(2020, 2026)}-{random.randint(1, 12):02d}-{random.randint(1, 28):02d} {random.randint(0, 23):02d}:{random.randint(0, 59):02d}:{random.randint(0, 59):02d}",
    ])()


class Doc:
    def __init__(self):
        self.parts, self.spans, self.pos = [], [], 0

    def add(self, s, label=None):
        if label:
            self.spans.append([self.pos, self.pos + len(s), label])
        self.parts.append(s)
        self.pos += len(s)

    def template(self, tpl, values):
        """Fills `{slot}`s; values are (text, label or None)."""
        i = 0
        while i < len(tpl):
            j = tpl.find("{", i)
            if j < 0:
                self.add(tpl[i:])
                break
            self.add(tpl[i:j])
            k = tpl.index("}", j)
            text, label = values[tpl[j + 1:k]]
            self.add(text, label)
            i = k + 1

    def json(self):
        return {"text": "".join(self.parts), "spans": self.spans}


def values(loc):
    fake, lang = FAKE[loc], LANG[loc]
    w = WORDS[lang]
    v = {
        "name": (fake.name(), "PERSON"),
        "phone": (fake.phone_number(), "PHONE_NUMBER"),
        "email": (fake.email(), "EMAIL_ADDRESS"),
        "cc": (card(fake), "CREDIT_CARD"),
        "iban": (fake.iban(), "IBAN_CODE"),
        "ip": (random.choice([fake.ipv4_public, fake.ipv6])(), "IP_ADDRESS"),
        "ssn": (FAKE["en_US"].ssn(), "US_SSN"),
        "ts": (moment(fake), None),
        "order": (str(random.randint(10_000, 99_999_999)), None),
    }
    for kind in ("phone", "card", "iban", "email", "name"):
        v[kind + "_w"] = (random.choice(w[kind]), None)
    return v


def prose(doc, loc):
    lang = LANG[loc]
    for _ in range(random.randint(2, 5)):
        doc.template(random.choice(SENTENCES[lang]), values(loc))
        doc.add(" ")
        if random.random() < 0.4:
            doc.add(f"({trap()}) ")


def csv(doc, loc):
    lang = LANG[loc]
    sep = ";" if lang in ("de", "fr", "it", "nl", "es") else ","
    doc.add(sep.join(CSV_HEADERS[lang] + ["ref"]) + "\n")
    for _ in range(random.randint(2, 6)):
        v = values(loc)
        cells = [v["name"], v["email"], v["phone"], v["cc"], v["iban"], (trap(), None)]
        for i, (text, label) in enumerate(cells):
            if i:
                doc.add(sep)
            doc.add(text, label)
        doc.add("\n")


def json_obj(doc, loc):
    lang = LANG[loc]
    keys = CSV_HEADERS[lang]
    v = values(loc)
    items = [(keys[0], v["name"]), (keys[1], v["email"]), (keys[2], v["phone"]),
             (keys[3], v["cc"]), (keys[4], v["iban"]), ("ip", v["ip"]), ("ref", (trap(), None))]
    doc.add("{")
    for i, (k, (text, label)) in enumerate(items):
        if i:
            doc.add(", ")
        doc.add(json.dumps(k, ensure_ascii=False) + ": \"")
        doc.add(text, label)
        doc.add("\"")
    doc.add("}\n")


def log(doc, loc):
    fake = FAKE[loc]
    v = values(loc)
    doc.add(f"{moment(fake)}Z INFO req={random.randint(10**7, 10**8)} user=")
    doc.add(*v["email"])
    doc.add(" ip=")
    doc.add(*v["ip"])
    doc.add(f" {trap()} phone=")
    doc.add(*v["phone"])
    doc.add(f" latency_ms={random.randint(1, 900)}\n")


def main():
    out, written = sys.stdout, 0
    while written < TARGET:
        loc = random.choice(LOCALES)
        doc = Doc()
        for _ in range(random.randint(1, 3)):
            random.choice([prose, prose, csv, json_obj, log])(doc, loc)
        line = json.dumps(doc.json(), ensure_ascii=False)
        out.write(line + "\n")
        written += len(line.encode()) + 1


if __name__ == "__main__":
    main()
