"""Valid identifier generators (own implementation), with checksums."""
import random, string, ipaddress, re

R = random.Random()

def digits(n):
    return ''.join(R.choice('0123456789') for _ in range(n))

# ---------------- Luhn / cards ----------------
def luhn_ok(s):
    s = [int(c) for c in s]
    tot = 0
    for i, d in enumerate(reversed(s)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        tot += d
    return tot % 10 == 0

def luhn_complete(prefix, length):
    body = prefix + digits(length - len(prefix) - 1)
    for c in '0123456789':
        if luhn_ok(body + c):
            return body + c

CARD_BRANDS = [
    # name, prefix fn, length, grouping, weight
    ('Visa', lambda: '4', 16, (4, 4, 4, 4), 30),
    ('Mastercard', lambda: str(R.randint(51, 55)), 16, (4, 4, 4, 4), 20),
    ('Mastercard', lambda: str(R.randint(2221, 2720)), 16, (4, 4, 4, 4), 6),
    ('American Express', lambda: R.choice(['34', '37']), 15, (4, 6, 5), 10),
    ('Discover', lambda: R.choice(['6011', '65', str(R.randint(644, 649))]), 16, (4, 4, 4, 4), 5),
    ('JCB', lambda: str(R.randint(3528, 3589)), 16, (4, 4, 4, 4), 4),
    ('Diners Club', lambda: R.choice(['36', '38', '300', '305']), 14, (4, 6, 4), 3),
    ('UnionPay', lambda: '62' + str(R.randint(2126, 2925))[:4], 16, (4, 4, 4, 4), 2),
    ('Maestro', lambda: R.choice(['6759', '6761', '5018', '5020', '5038', '6304']), 16, (4, 4, 4, 4), 2),
    ('Visa', lambda: '4', 19, (4, 4, 4, 4, 3), 1),
]

def card():
    brands = CARD_BRANDS
    b = R.choices(brands, weights=[x[4] for x in brands])[0]
    name, pf, ln, grp, _ = b
    num = luhn_complete(pf(), ln)
    style = R.choices(['space', 'dash', 'bare'], weights=[50, 20, 30])[0]
    if style == 'bare':
        s = num
    else:
        sep = ' ' if style == 'space' else '-'
        parts, i = [], 0
        for g in grp:
            parts.append(num[i:i + g]); i += g
        s = sep.join(parts)
    return s, name, 'card:%s:%s' % (name.split()[0], style)

# ---------------- IBAN ----------------
def _iban_num(s):
    return int(''.join(str(int(c, 36)) for c in s))

def iban_check(cc, bban):
    n = _iban_num(bban + cc + '00')
    return '%02d' % (98 - n % 97)

def iban_valid(s):
    s = s.replace(' ', '').replace('-', '')
    return _iban_num(s[4:] + s[:4]) % 97 == 1

def _rib_key(bank, branch, acct):
    return '%02d' % (97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(acct)) % 97))

def _es_dc(ten):
    w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
    d = 11 - sum(int(c) * x for c, x in zip(ten, w)) % 11
    return {11: 0, 10: 1}.get(d, d)

def bban(cc):
    if cc == 'DE':
        return digits(8) if False else R.choice(['10070000', '37040044', '50010517', '20041133', '70020270', '12030000', '43060967', '76050101']) + digits(10)
    if cc == 'GB':
        return R.choice(['NWBK', 'BARC', 'LOYD', 'HBUK', 'MIDL', 'NAIA', 'MONZ']) + digits(14)
    if cc == 'FR':
        bank, br, acct = R.choice(['30004', '30003', '20041', '10107', '30066', '17515']), digits(5), digits(11)
        return bank + br + acct + _rib_key(bank, br, acct)
    if cc == 'ES':
        bank, br, acct = R.choice(['2100', '0049', '0182', '0081', '2038', '0128']), digits(4), digits(10)
        return bank + br + str(_es_dc('00' + bank + br)) + str(_es_dc(acct)) + acct
    if cc == 'IT':
        return R.choice(string.ascii_uppercase) + R.choice(['03069', '02008', '05034', '03062', '01030']) + digits(5) + digits(12)
    if cc == 'NL':
        return R.choice(['ABNA', 'INGB', 'RABO', 'SNSB', 'TRIO', 'KNAB', 'ASNB']) + digits(10)
    if cc == 'BE':
        ten = R.choice(['001', '068', '310', '363', '539']) + digits(7)
        c = int(ten) % 97 or 97
        return ten + '%02d' % c
    if cc == 'AT':
        return digits(16)
    if cc == 'CH':
        return '00' + digits(3) + digits(12)
    if cc == 'PL':
        return digits(24)
    if cc == 'LU':
        return digits(3) + digits(13)
    if cc == 'IE':
        return R.choice(['AIBK', 'BOFI']) + digits(14)
    raise ValueError(cc)

def iban(cc=None):
    cc = cc or R.choice(['DE', 'GB', 'FR', 'ES', 'IT', 'NL', 'BE', 'AT', 'CH', 'PL', 'LU', 'IE'])
    b = bban(cc)
    raw = cc + iban_check(cc, b) + b
    assert iban_valid(raw)
    style = R.choices(['bare', 'space4', 'dash4'], weights=[45, 50, 5])[0]
    if style == 'bare':
        s = raw
    else:
        sep = ' ' if style == 'space4' else '-'
        s = sep.join(raw[i:i + 4] for i in range(0, len(raw), 4))
    return s, 'iban:%s:%s' % (cc, style)

# ---------------- US SSN / ITIN ----------------
VOID_SSN = {'078051120', '219099999', '123456789'}
def ssn():
    while True:
        area = R.randint(1, 899)
        if area == 666:
            continue
        grp, ser = R.randint(1, 99), R.randint(1, 9999)
        raw = '%03d%02d%04d' % (area, grp, ser)
        if raw in VOID_SSN or len(set(raw)) == 1:
            continue
        break
    style = R.choices(['dash', 'space', 'bare'], weights=[70, 12, 18])[0]
    s = {'dash': '%s-%s-%s', 'space': '%s %s %s', 'bare': '%s%s%s'}[style] % (raw[:3], raw[3:5], raw[5:])
    return s, 'ssn:' + style

def itin():
    area = R.randint(900, 999)
    grp = R.choice(list(range(50, 66)) + list(range(70, 89)) + [90, 91, 92] + list(range(94, 100)))
    raw = '%03d%02d%04d' % (area, grp, R.randint(1, 9999))
    style = R.choices(['dash', 'bare'], weights=[80, 20])[0]
    s = '%s-%s-%s' % (raw[:3], raw[3:5], raw[5:]) if style == 'dash' else raw
    return s, 'itin:' + style

# ---------------- UK NHS / NINO ----------------
def nhs():
    while True:
        nine = str(R.randint(1, 9)) + digits(8)
        s = sum(int(c) * w for c, w in zip(nine, range(10, 1, -1)))
        chk = 11 - s % 11
        if chk == 11:
            chk = 0
        if chk == 10:
            continue
        raw = nine + str(chk)
        break
    style = R.choices(['space', 'bare', 'dash'], weights=[70, 20, 10])[0]
    s = {'space': ' ', 'bare': '', 'dash': '-'}[style].join([raw[:3], raw[3:6], raw[6:]])
    return s, 'nhs:' + style

def nino():
    first_ok = [c for c in string.ascii_uppercase if c not in 'DFIQUV']
    second_ok = [c for c in string.ascii_uppercase if c not in 'DFIOQUV']
    while True:
        p = R.choice(first_ok) + R.choice(second_ok)
        if p not in ('BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ'):
            break
    d = digits(6)
    suf = R.choice('ABCD')
    style = R.choices(['space', 'bare'], weights=[50, 50])[0]
    if style == 'space':
        s = '%s %s %s %s %s' % (p, d[:2], d[2:4], d[4:], suf)
    else:
        s = p + d + suf
    return s, 'nino:' + style

# ---------------- DE Steuer-ID ----------------
def de_taxid_check(ten):
    product = 10
    for c in ten:
        sm = (int(c) + product) % 10
        if sm == 0:
            sm = 10
        product = (sm * 2) % 11
    chk = 11 - product
    return 0 if chk == 10 else chk

def steuerid():
    while True:
        pool = list('0123456789')
        R.shuffle(pool)
        use = pool[:9]
        rep = R.choice(use)
        ds = use + [rep]
        R.shuffle(ds)
        ten = ''.join(ds)
        if ten[0] == '0':
            continue
        if any(ten[i] == ten[i + 1] == ten[i + 2] for i in range(8)):
            continue
        break
    raw = ten + str(de_taxid_check(ten))
    style = R.choices(['bare', 'space'], weights=[70, 30])[0]
    s = raw if style == 'bare' else '%s %s %s %s' % (raw[:2], raw[2:5], raw[5:8], raw[8:])
    return s, 'detax:' + style

# ---------------- FR NIR ----------------
def nir():
    sex = R.choice('12')
    yy = '%02d' % R.randint(0, 99)
    mm = '%02d' % R.randint(1, 12)
    dep = R.choice(['%02d' % R.randint(1, 95) for _ in range(20)] + ['2A', '2B', '75', '69', '13'])
    if dep == '20':
        dep = '75'
    com = '%03d' % R.randint(1, 990)
    order = '%03d' % R.randint(1, 999)
    body = sex + yy + mm + dep + com + order
    num = body.replace('2A', '19').replace('2B', '18')
    key = '%02d' % (97 - int(num) % 97)
    style = R.choices(['space', 'bare'], weights=[55, 45])[0]
    if style == 'space':
        s = ' '.join([sex, yy, mm, dep, com, order, key])
    else:
        s = body + key
    return s, 'nir:' + style + (':corse' if dep in ('2A', '2B') else '')

# ---------------- ES NIF / NIE ----------------
NIF_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE'
def nif():
    n = R.randint(100000, 99999999)
    raw = '%08d' % n
    letter = NIF_LETTERS[n % 23]
    style = R.choices(['plain', 'dash'], weights=[80, 20])[0]
    return (raw + letter if style == 'plain' else raw + '-' + letter), 'nif:' + style

def nie():
    p = R.choice('XYZ')
    n = R.randint(0, 9999999)
    letter = NIF_LETTERS[int(str('XYZ'.index(p)) + '%07d' % n) % 23]
    style = R.choices(['plain', 'dash'], weights=[80, 20])[0]
    s = p + '%07d' % n + letter if style == 'plain' else '%s-%07d-%s' % (p, n, letter)
    return s, 'nie:' + style

# ---------------- IT codice fiscale ----------------
CF_ODD = dict(zip('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                  [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]))
CF_EVEN = {c: (int(c) if c.isdigit() else ord(c) - 65) for c in '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'}

def _fold(s):
    import unicodedata
    return ''.join(c for c in unicodedata.normalize('NFD', s) if unicodedata.category(c) != 'Mn')

def _cons_vow(s):
    s = re.sub('[^A-Z]', '', _fold(s).upper())
    return [c for c in s if c not in 'AEIOU'], [c for c in s if c in 'AEIOU']

def cf(first, last, female=None):
    c, v = _cons_vow(last)
    sur = (''.join(c + v) + 'XXX')[:3]
    c, v = _cons_vow(first)
    if len(c) >= 4:
        nm = c[0] + c[2] + c[3]
    else:
        nm = (''.join(c + v) + 'XXX')[:3]
    yy = '%02d' % R.randint(40, 99)
    mm = R.choice('ABCDEHLMPRST')
    day = R.randint(1, 28)
    if female is None:
        female = R.random() < 0.5
    dd = '%02d' % (day + 40 if female else day)
    com = R.choice(['H501', 'F205', 'L219', 'F839', 'A944', 'D612', 'G273', 'L736', 'B354', 'C351'])
    body = sur + nm + yy + mm + dd + com
    tot = sum(CF_ODD[ch] if i % 2 == 0 else CF_EVEN[ch] for i, ch in enumerate(body))
    return body + chr(65 + tot % 26), 'cf'

# ---------------- NL BSN ----------------
def bsn():
    while True:
        e = str(R.randint(1, 9)) + digits(7)
        s = sum(int(c) * w for c, w in zip(e, range(9, 1, -1)))
        chk = s % 11
        if chk == 10:
            continue
        raw = e + str(chk)
        break
    style = R.choices(['bare', 'dots', 'space'], weights=[75, 15, 10])[0]
    if style == 'bare':
        s = raw
    elif style == 'dots':
        s = '%s.%s.%s' % (raw[:4], raw[4:6], raw[6:])
    else:
        s = '%s %s %s' % (raw[:3], raw[3:6], raw[6:])
    return s, 'bsn:' + style

# ---------------- IN Aadhaar (Verhoeff) ----------------
VD = [[0,1,2,3,4,5,6,7,8,9],[1,2,3,4,0,6,7,8,9,5],[2,3,4,0,1,7,8,9,5,6],[3,4,0,1,2,8,9,5,6,7],[4,0,1,2,3,9,5,6,7,8],
      [5,9,8,7,6,0,4,3,2,1],[6,5,9,8,7,1,0,4,3,2],[7,6,5,9,8,2,1,0,4,3],[8,7,6,5,9,3,2,1,0,4],[9,8,7,6,5,4,3,2,1,0]]
VP = [[0,1,2,3,4,5,6,7,8,9],[1,5,7,6,2,8,3,0,9,4],[5,8,0,3,7,9,6,1,4,2],[8,9,1,6,0,4,3,5,2,7],[9,4,5,3,1,2,6,8,7,0],
      [4,2,8,6,5,7,3,9,0,1],[2,7,9,3,8,0,6,4,1,5],[7,0,4,6,9,1,3,2,5,8]]
VINV = [0,4,3,2,1,5,6,7,8,9]
def verhoeff_check(num):
    c = 0
    for i, d in enumerate(reversed(num)):
        c = VD[c][VP[(i + 1) % 8][int(d)]]
    return VINV[c]
def verhoeff_ok(num):
    c = 0
    for i, d in enumerate(reversed(num)):
        c = VD[c][VP[i % 8][int(d)]]
    return c == 0

def aadhaar():
    while True:
        e = str(R.randint(2, 9)) + digits(10)
        raw = e + str(verhoeff_check(e))
        if raw != raw[::-1] and verhoeff_ok(raw):
            break
    style = R.choices(['space', 'bare', 'dash'], weights=[60, 30, 10])[0]
    s = {'space': ' ', 'bare': '', 'dash': '-'}[style].join([raw[:4], raw[4:8], raw[8:]])
    return s, 'aadhaar:' + style

# ---------------- IP ----------------
def ip4():
    kind = R.choices(['public', 'p10', 'p192', 'p172', 'cgnat'], weights=[60, 12, 14, 8, 6])[0]
    if kind == 'public':
        while True:
            a = R.randint(1, 223)
            if a not in (10, 127, 0):
                break
        o = [a, R.randint(0, 255), R.randint(0, 255), R.randint(1, 254)]
    elif kind == 'p10':
        o = [10, R.randint(0, 255), R.randint(0, 255), R.randint(1, 254)]
    elif kind == 'p192':
        o = [192, 168, R.randint(0, 255), R.randint(1, 254)]
    elif kind == 'p172':
        o = [172, R.randint(16, 31), R.randint(0, 255), R.randint(1, 254)]
    else:
        o = [100, R.randint(64, 127), R.randint(0, 255), R.randint(1, 254)]
    return '.'.join(map(str, o)), 'ip4:' + kind

def ip6():
    kind = R.choices(['compressed', 'full', 'linklocal_zone', 'mapped4', 'upper', 'loopback', 'doc'], weights=[40, 15, 10, 10, 10, 3, 12])[0]
    groups = [R.randint(0, 0xffff) for _ in range(8)]
    if R.random() < 0.5:
        k = R.randint(2, 5)
        for i in range(k, min(8, k + R.randint(1, 3))):
            groups[i] = 0
    if kind == 'doc':
        groups[0], groups[1] = 0x2001, 0xdb8
    else:
        groups[0] = R.choice([0x2001, 0x2a02, 0x2600, 0x2a00, 0x2003, 0x2c0f, 0x2406])
    a = ipaddress.IPv6Address(':'.join('%x' % g for g in groups))
    if kind in ('compressed', 'doc'):
        s = a.compressed
    elif kind == 'full':
        s = a.exploded
    elif kind == 'upper':
        s = a.compressed.upper()
    elif kind == 'linklocal_zone':
        s = 'fe80::%x:%x:%x:%x' % tuple(R.randint(0, 0xffff) for _ in range(4)) + R.choice(['%eth0', '%en0', '%wlan0', '%3'])
    elif kind == 'mapped4':
        s = '::ffff:' + ip4()[0]
    else:
        s = '::1'
    return s, 'ip6:' + kind
