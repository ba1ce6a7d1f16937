#!/usr/bin/env python3
"""Independent hostile PII corpus generator for custodia.
Writes corpus.jsonl ({"text", "spans"}) and corpus.meta.jsonl (format tags of every gold span and every trap)."""
import json, re, sys, unicodedata
from phonenumbers import PhoneNumberType as T
import ids, phones, traps
from ids import R, digits

R.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 20240311)
NDOCS = int(sys.argv[1]) if len(sys.argv) > 1 else 2600

NAMES = {
    'us': (['James', 'Mary', 'Robert', 'Patricia', 'Jennifer', 'Michael', 'Linda', 'David', 'Elizabeth', 'Tyrone', 'Keisha',
            'DeShawn', 'Brittany', 'Cody', 'Madison', 'Hunter', 'Destiny', 'Kevin', 'Ashley', 'Brandon'],
           ['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez', 'Hernandez',
            'Lopez', 'Washington', "O'Connor", 'McAllister', 'Nguyen', 'Kowalski', 'Patel', 'Cohen']),
    'gb': (['Oliver', 'Amelia', 'Harry', 'Isla', 'George', 'Ava', 'Siobhan', 'Niamh', 'Rhys', 'Callum', 'Eilidh', 'Alistair',
            'Gemma', 'Poppy', 'Alfie', 'Imogen'],
           ['Taylor', 'Davies', 'Evans', 'Thomas', 'Roberts', 'Wright', 'Walker', 'Hughes', 'Edwards', 'Thompson', 'MacLeod',
            'Fitzgerald', 'Pryce', 'Ahmed', 'Khan', 'Ellis']),
    'de': (['Lukas', 'Jürgen', 'Anna', 'Lena', 'Maximilian', 'Sophie', 'Klaus', 'Dieter', 'Ursula', 'Jörg', 'Björn', 'Günther',
            'Heike', 'Sabine', 'Katrin', 'Uwe', 'Mehmet', 'Ayşe', 'Friederike', 'Torsten'],
           ['Müller', 'Schmidt', 'Schneider', 'Fischer', 'Weber', 'Meyer', 'Wagner', 'Becker', 'Schulz', 'Hoffmann', 'Schäfer',
            'Koch', 'Bauer', 'Richter', 'Klein', 'Wolf', 'Schröder', 'Neumann', 'Zimmermann', 'Krüger', 'Yılmaz']),
    'fr': (['Jean', 'Marie', 'Pierre', 'Camille', 'Léa', 'Chloé', 'Théo', 'Hugo', 'Manon', 'Élodie', 'François', 'Jérôme',
            'Anaïs', 'Gaëlle', 'Benoît', 'Margaux'],
           ['Martin', 'Bernard', 'Dubois', 'Thomas', 'Robert', 'Richard', 'Petit', 'Durand', 'Leroy', 'Moreau', 'Lefèvre',
            'Fournier', 'Girard', 'Bonnet', 'Dupont', 'Lambert', 'Fontaine', 'Rousseau']),
    'es': (['José', 'María', 'Antonio', 'Carmen', 'Manuel', 'Lucía', 'Javier', 'Sofía', 'Alejandro', 'Marta', 'Íñigo', 'Nerea',
            'Jordi', 'Montserrat', 'Pilar', 'Álvaro'],
           ['García', 'Fernández', 'González', 'Rodríguez', 'López', 'Martínez', 'Sánchez', 'Pérez', 'Gómez', 'Martín',
            'Jiménez', 'Ruiz', 'Hernández', 'Díaz', 'Álvarez', 'Muñoz', 'Iglesias', 'Etxeberria']),
    'it': (['Giuseppe', 'Giovanni', 'Francesca', 'Chiara', 'Alessandro', 'Lorenzo', 'Giulia', 'Matteo', 'Federica', 'Salvatore',
            'Antonella', 'Raffaele', 'Beatrice', 'Gianluca'],
           ['Rossi', 'Russo', 'Ferrari', 'Esposito', 'Bianchi', 'Romano', 'Colombo', 'Ricci', 'Marino', 'Greco', 'Bruno',
            'Gallo', 'Conti', 'De Luca', 'Mancini', 'Costa', "D'Amico", 'Lombardi']),
    'nl': (['Daan', 'Sem', 'Emma', 'Julia', 'Tess', 'Bram', 'Lotte', 'Sanne', 'Joost', 'Pieter', 'Maarten', 'Femke', 'Anouk',
            'Wouter', 'Floor', 'Ruud'],
           ['de Jong', 'Jansen', 'de Vries', 'van den Berg', 'van Dijk', 'Bakker', 'Janssen', 'Visser', 'Smit', 'Meijer',
            'de Boer', 'Mulder', 'de Groot', 'Bos', 'Vos', 'Peters', 'Hendriks', 'van Leeuwen']),
}
DOMAINS = {
    'us': ['gmail.com', 'yahoo.com', 'outlook.com', 'aol.com', 'comcast.net', 'acme-corp.com', 'mail.bigbank.com', 'icloud.com', 'proton.me'],
    'gb': ['btinternet.com', 'yahoo.co.uk', 'hotmail.co.uk', 'sky.com', 'nhs.net', 'virginmedia.com', 'bristol.ac.uk', 'gmail.com'],
    'de': ['web.de', 'gmx.de', 't-online.de', 'mueller-bau.de', 'posteo.de', 'gmx.net', 'freenet.de', 'firma.berlin', 'uni-heidelberg.de'],
    'fr': ['orange.fr', 'free.fr', 'laposte.net', 'wanadoo.fr', 'sfr.fr', 'mairie-lyon.fr', 'gmail.com', 'societe.paris'],
    'es': ['hotmail.es', 'telefonica.net', 'gmail.com', 'yahoo.es', 'correo.ugr.es', 'empresa.com.es', 'outlook.es'],
    'it': ['libero.it', 'virgilio.it', 'alice.it', 'tiscali.it', 'pec.it', 'gmail.com', 'studio-rossi.it', 'fastwebnet.it'],
    'nl': ['ziggo.nl', 'kpnmail.nl', 'xs4all.nl', 'planet.nl', 'gmail.com', 'hetnet.nl', 'bedrijf.amsterdam', 'tudelft.nl'],
}
LOC_REGION = {'us': 'US', 'gb': 'GB', 'de': 'DE', 'fr': 'FR', 'es': 'ES', 'it': 'IT', 'nl': 'NL'}
IBAN_CC = {'us': ['GB', 'DE', 'FR', 'CH'], 'gb': ['GB', 'IE'], 'de': ['DE', 'DE', 'AT', 'CH'], 'fr': ['FR', 'FR', 'BE', 'LU'],
           'es': ['ES'], 'it': ['IT'], 'nl': ['NL', 'NL', 'BE']}
STREETS = {
    'us': lambda: '%d %s %s, %s, %s %s' % (R.randint(1, 9999), R.choice(['Oak', 'Maple', 'Main', 'Elm', '5th', 'Sunset']), R.choice(['St', 'Ave', 'Blvd', 'Road']), R.choice(['Springfield', 'Austin', 'Denver', 'Portland']), R.choice(['IL', 'TX', 'CO', 'OR']), digits(5)),
    'gb': lambda: '%d %s %s, %s' % (R.randint(1, 200), R.choice(['Church', 'Victoria', 'Station', 'Mill']), R.choice(['Road', 'Lane', 'Street', 'Close']), R.choice(['Leeds LS6 2AB', 'Bristol BS8 1TH', 'London SW1A 2AA', 'Manchester M1 4BT'])),
    'de': lambda: '%s %d, %s %s' % (R.choice(['Hauptstraße', 'Lindenallee', 'Am Markt', 'Goethestr.', 'Bahnhofstraße']), R.randint(1, 120), digits(5), R.choice(['Berlin', 'München', 'Köln', 'Leipzig', 'Hamburg'])),
    'fr': lambda: '%d %s, %s %s' % (R.randint(1, 120), R.choice(['rue de la Paix', 'avenue Victor Hugo', 'boulevard Voltaire', 'rue des Lilas']), digits(5), R.choice(['Paris', 'Lyon', 'Marseille', 'Lille'])),
    'es': lambda: '%s %d, %s %s' % (R.choice(['Calle Mayor', 'Avda. de la Constitución', 'Calle de Alcalá', 'Paseo de Gracia']), R.randint(1, 200), digits(5), R.choice(['Madrid', 'Barcelona', 'Sevilla', 'Valencia'])),
    'it': lambda: '%s %d, %s %s' % (R.choice(['Via Roma', 'Corso Italia', 'Via Garibaldi', 'Piazza Duomo']), R.randint(1, 200), digits(5), R.choice(['Milano', 'Roma', 'Torino', 'Napoli'])),
    'nl': lambda: '%s %d, %s %s' % (R.choice(['Kerkstraat', 'Dorpsstraat', 'Prinsengracht', 'Stationsweg']), R.randint(1, 300), digits(4) + ' ' + R.choice(['AB', 'KL', 'XZ']), R.choice(['Amsterdam', 'Utrecht', 'Rotterdam', 'Den Haag'])),
}

def fold(s):
    return ''.join(c for c in unicodedata.normalize('NFD', s) if unicodedata.category(c) != 'Mn').replace('ı', 'i').replace('ş', 's')

class Ctx:
    def __init__(self, loc):
        self.loc = loc
        self.person = None

    def new_person(self):
        f, l = R.choice(NAMES[self.loc][0]), R.choice(NAMES[self.loc][1])
        self.person = (f, l)
        return self.person

def email_for(ctx, f=None, l=None):
    if f is None:
        f, l = ctx.person or ctx.new_person()
    fa, la = fold(f).lower(), fold(l).lower().replace(' ', '')
    dom = R.choice(DOMAINS[ctx.loc])
    tag = 'email:plain'
    pat = R.choices(['f.l', 'fl', 'f_l', 'f-l', 'fl99', 'initial', 'plus', 'upper', 'apos', 'idn', 'sub'],
                    weights=[25, 10, 8, 6, 12, 8, 6, 5, 3, 3, 6])[0]
    if pat == 'f.l':
        lp = '%s.%s' % (fa, la.replace("'", ''))
    elif pat == 'fl':
        lp = fa + la.replace("'", '')
    elif pat == 'f_l':
        lp = '%s_%s' % (la.replace("'", ''), fa)
    elif pat == 'f-l':
        lp = '%s-%s' % (fa, la.replace("'", ''))
    elif pat == 'fl99':
        lp = '%s%s%d' % (fa, la[:3].replace("'", ''), R.randint(1, 1999))
    elif pat == 'initial':
        lp = '%s.%s' % (fa[0], la.replace("'", ''))
    elif pat == 'plus':
        lp = '%s.%s+%s' % (fa, la.replace("'", ''), R.choice(['shop', 'news', 'bank', 'x']))
        tag = 'email:plus'
    elif pat == 'upper':
        lp = '%s.%s' % (fold(f), fold(l).replace(' ', '').replace("'", ''))
        dom = dom.capitalize() if R.random() < 0.5 else dom.upper()
        tag = 'email:upper'
    elif pat == 'apos':
        lp = "%s.o'%s" % (fa, la.replace("'", ''))
        tag = 'email:apostrophe'
    elif pat == 'idn':
        lp = '%s.%s' % (f.lower(), l.lower().replace(' ', ''))
        dom = R.choice(['müller-bau.de', 'bücher.de', 'café-paris.fr', 'straße.berlin', DOMAINS[ctx.loc][0]])
        tag = 'email:idn'
        if lp == fold(lp) and dom == fold(dom):
            tag = 'email:plain'
    else:
        lp = '%s.%s' % (fa, la.replace("'", ''))
        dom = R.choice(['mail.', 'mx1.', 'staff.', 'eu.']) + dom
        tag = 'email:subdomain'
    return lp + '@' + dom, tag

# ------------------------------------------------------------------ slots
def slot(ctx, name, arg):
    """returns (text, entity_or_None, tag, label_len_or_None)"""
    loc = ctx.loc
    if name == 'name':
        f, l = ctx.new_person()
        return '%s %s' % (f, l), 'PERSON', 'person', None
    if name == 'fname':
        f, l = ctx.new_person()
        return f, 'PERSON', 'person:first', None
    if name == 'lname':
        f, l = ctx.person or ctx.new_person()
        return l, 'PERSON', 'person:last', None
    if name == 'email':
        s, tag = email_for(ctx)
        return s, 'EMAIL_ADDRESS', tag, None
    if name == 'email_other':
        other = R.choice(list(NAMES))
        s, tag = email_for(Ctx(other), R.choice(NAMES[other][0]), R.choice(NAMES[other][1]))
        return s, 'EMAIL_ADDRESS', tag, None
    if name == 'phone':
        # arg: region or 'loc' or 'any'; optional suffixes m (mobile), x (extension), b (bare digits)
        a = (arg or 'loc').split('-')
        reg = a[0]
        if reg == 'loc':
            reg = LOC_REGION[loc]
        elif reg == 'any':
            reg = R.choice(['US', 'GB', 'DE', 'FR', 'IT', 'NL', 'IN', 'IL', 'CA', 'BR'])
        kind = T.MOBILE if 'm' in a else (T.FIXED_LINE if 'f' in a else None)
        style = None
        if 'b' in a:
            style = 'bare' if reg != 'ES' else 'bare_e164'
        if 'i' in a:
            style = R.choice(['intl', 'e164', '00'])
        s, lab, tag = phones.phone(reg, kind, style, ext=('x' in a))
        return s, 'PHONE_NUMBER', tag, lab
    if name == 'card':
        s, brand, tag = ids.card()
        return s, 'CREDIT_CARD', tag, None
    if name == 'iban':
        cc = arg or R.choice(IBAN_CC[loc])
        s, tag = ids.iban(cc)
        return s, 'IBAN_CODE', tag, None
    if name == 'ip4':
        s, tag = ids.ip4(); return s, 'IP_ADDRESS', tag, None
    if name == 'ip6':
        s, tag = ids.ip6(); return s, 'IP_ADDRESS', tag, None
    if name == 'ip':
        s, tag = (ids.ip4() if R.random() < 0.65 else ids.ip6()); return s, 'IP_ADDRESS', tag, None
    simple = {'ssn': ('US_SSN', ids.ssn), 'itin': ('US_ITIN', ids.itin), 'nhs': ('UK_NHS', ids.nhs), 'nino': ('UK_NINO', ids.nino),
              'stid': ('DE_TAX_ID', ids.steuerid), 'nir': ('FR_NIR', ids.nir), 'nif': ('ES_NIF', ids.nif), 'nie': ('ES_NIE', ids.nie),
              'bsn': ('NL_BSN', ids.bsn), 'aadhaar': ('IN_AADHAAR', ids.aadhaar)}
    if name in simple:
        ent, fn = simple[name]
        s, tag = fn()
        return s, ent, tag, None
    if name == 'cf':
        f, l = ctx.person or ctx.new_person()
        s, tag = ids.cf(f, l)
        return s, 'IT_FISCAL_CODE', tag, None
    if name == 'addr':
        return STREETS[loc](), None, 'addr', None
    if name == 'dob':
        d, m, y = R.randint(1, 28), R.randint(1, 12), R.randint(1940, 2005)
        return R.choice(['%02d.%02d.%d' % (d, m, y), '%02d/%02d/%d' % (m, d, y), '%d-%02d-%02d' % (y, m, d)]), None, 'dob', None
    if name == 'date':
        d, m, y = R.randint(1, 28), R.randint(1, 12), R.randint(2022, 2025)
        return R.choice(['%02d.%02d.%d' % (d, m, y), '%d-%02d-%02d' % (y, m, d), '%02d/%02d/%d' % (d, m, y)]), None, 'date', None
    if name in traps.GEN:
        s, tag = traps.trap(name)
        return s, 'TRAP', 'trap:' + tag, None
    raise KeyError(name)

SLOT_RE = re.compile(r'\{(\w+)(?::([\w-]+))?\}')

class Doc:
    def __init__(self):
        self.buf, self.n, self.spans, self.meta = [], 0, [], []

    def lit(self, s):
        self.buf.append(s); self.n += len(s)

    def val(self, text, ent, tag, lab=None):
        st = self.n
        self.lit(text)
        if ent:
            end = st + (lab if lab is not None else len(text))
            if ent != 'TRAP':
                self.spans.append([st, end, ent])
            self.meta.append([st, end, ent, tag])

    def text(self):
        return ''.join(self.buf)

def render(doc, ctx, tpl):
    pos = 0
    for m in SLOT_RE.finditer(tpl):
        doc.lit(tpl[pos:m.start()])
        doc.val(*slot(ctx, m.group(1), m.group(2)))
        pos = m.end()
    doc.lit(tpl[pos:])

# ------------------------------------------------------------------ prose templates per locale
from templates import PROSE, LOGS
import structured

def make_doc(i):
    loc = R.choices(list(NAMES), weights=[18, 16, 18, 13, 11, 11, 13])[0]
    ctx = Ctx(loc)
    doc = Doc()
    kind = R.choices(['prose', 'log', 'csv', 'json'], weights=[50, 20, 16, 14])[0]
    if kind == 'prose':
        k = R.choice([1, 1, 2, 2, 3])
        tpls = R.sample(PROSE[loc], min(k, len(PROSE[loc])))
        for j, t in enumerate(tpls):
            if j:
                doc.lit(R.choice([' ', '\n', '\n\n', ' ']))
            render(doc, ctx, t)
    elif kind == 'log':
        for j in range(R.randint(2, 6)):
            if j:
                doc.lit('\n')
            render(doc, ctx, R.choice(LOGS))
    elif kind == 'csv':
        structured.csv_doc(doc, ctx, slot)
    else:
        structured.json_doc(doc, ctx, slot)
    return doc, loc, kind

def main():
    out = open('corpus.jsonl', 'w', encoding='utf-8')
    meta = open('corpus.meta.jsonl', 'w', encoding='utf-8')
    for i in range(NDOCS):
        doc, loc, kind = make_doc(i)
        t = doc.text()
        assert '\x00' not in t
        for s, e, ent in doc.spans:
            assert t[s:e] == t[s:e].strip(), (t[s:e], ent)
        out.write(json.dumps({'text': t, 'spans': doc.spans}, ensure_ascii=False) + '\n')
        meta.write(json.dumps({'id': i, 'loc': loc, 'kind': kind, 'items': doc.meta}, ensure_ascii=False) + '\n')
    out.close(); meta.close()

if __name__ == '__main__':
    main()
