"""Lookalike identifiers that are NOT personal data. Each is checked so that it does not
accidentally satisfy a validator (Luhn card, libphonenumber-valid match, IBAN, IPv4, SSN shape)."""
import re, string, hashlib, uuid
import phonenumbers as P
from ids import R, digits, luhn_ok, iban_valid

PREGIONS = ['US', 'GB', 'DE', 'FR', 'IT', 'NL', 'IN', 'IL', 'CA', 'BR']

def hexs(n):
    return ''.join(R.choice('0123456789abcdef') for _ in range(n))

def _order():
    return R.choice([
        lambda: '#' + digits(R.randint(6, 10)),
        lambda: 'ORD-%d-%06d' % (R.randint(2019, 2025), R.randint(1, 999999)),
        lambda: '%03d-%07d-%07d' % (R.randint(100, 999), R.randint(0, 9999999), R.randint(0, 9999999)),
        lambda: 'A' + digits(8),
        lambda: 'BE-%s' % digits(9),
        lambda: 'SO%s' % digits(7),
        lambda: digits(R.randint(8, 12)),
    ])()

def _build():
    return R.choice([
        lambda: 'build %d%02d%02d.%d' % (R.randint(2021, 2025), R.randint(1, 12), R.randint(1, 28), R.randint(1, 9)),
        lambda: hexs(7),
        lambda: 'ci-%s' % digits(R.randint(5, 9)),
        lambda: '#%d' % R.randint(100, 99999),
        lambda: '%d.%d.%d-b%d' % (R.randint(1, 9), R.randint(0, 30), R.randint(0, 99), R.randint(1, 9999)),
        lambda: '%d.%d.%d+%s' % (R.randint(1, 20), R.randint(0, 30), R.randint(0, 99), hexs(8)),
    ])()

def _ver():
    return R.choice([
        lambda: 'v%d.%d.%d' % (R.randint(0, 12), R.randint(0, 40), R.randint(0, 60)),
        lambda: '%d.%d.%d' % (R.randint(0, 12), R.randint(0, 40), R.randint(0, 60)),
        lambda: '%d.%d.%d-rc.%d' % (R.randint(0, 5), R.randint(0, 40), R.randint(0, 9), R.randint(1, 5)),
        lambda: '10.0.%d.%d' % (R.randint(17000, 26000), R.randint(256, 6000)),
        lambda: '%d.%d.%d.%d' % (R.randint(300, 2025), R.randint(0, 12), R.randint(0, 40), R.randint(0, 9999)),
    ])()

def _ver4_hard():
    # a four-part version number whose parts are all <= 255 (reads as IPv4 literally)
    return '%d.%d.%d.%d' % (R.randint(1, 9), R.randint(0, 20), R.randint(0, 20), R.randint(0, 300))

def _oid():
    return '1.3.6.1.4.1.%d.%d.%d' % (R.randint(100, 60000), R.randint(1, 30), R.randint(1, 30))

def _sku():
    return R.choice([
        lambda: 'SKU-%s-%s' % (digits(4), R.choice(['XS', 'S', 'M', 'L', 'XL', 'BLK', 'WHT'])),
        lambda: 'ART-%s-%s-%d' % (digits(4), R.choice(['BLK', 'RED', 'NVY']), R.randint(36, 46)),
        lambda: digits(13),  # EAN-like
        lambda: '%s-%s' % (''.join(R.choice(string.ascii_uppercase) for _ in range(3)), digits(5)),
        lambda: 'MPN %s%s' % (''.join(R.choice(string.ascii_uppercase) for _ in range(2)), digits(6)),
    ])()

def _inv():
    return R.choice([
        lambda: 'INV-%d-%05d' % (R.randint(2019, 2025), R.randint(1, 99999)),
        lambda: 'RE-%d-%02d-%04d' % (R.randint(2019, 2025), R.randint(1, 12), R.randint(1, 9999)),
        lambda: 'FA%d/%04d' % (R.randint(2019, 2025), R.randint(1, 9999)),
        lambda: 'FAC-%06d' % R.randint(1, 999999),
        lambda: '%d%s' % (R.randint(2019, 2025), digits(6)),
        lambda: 'F-%s/%d' % (digits(5), R.randint(2019, 2025)),
    ])()

def _ts():
    y, mo, d, h, mi, s = R.randint(2019, 2025), R.randint(1, 12), R.randint(1, 28), R.randint(0, 23), R.randint(0, 59), R.randint(0, 59)
    return R.choice([
        lambda: '%d-%02d-%02dT%02d:%02d:%02d.%03dZ' % (y, mo, d, h, mi, s, R.randint(0, 999)),
        lambda: '%d-%02d-%02d %02d:%02d:%02d' % (y, mo, d, h, mi, s),
        lambda: '%02d.%02d.%d %02d:%02d' % (d, mo, y, h, mi),
        lambda: '%02d/%02d/%d %02d:%02d:%02d' % (d, mo, y, h, mi, s),
        lambda: str(R.randint(1550000000, 1760000000)),
        lambda: str(R.randint(1550000000000, 1760000000000)),
        lambda: '%d%02d%02d%02d%02d%02d' % (y, mo, d, h, mi, s),
    ])()

def _amt():
    a = R.randint(1, 999999) / 100
    return R.choice([
        lambda: '$%s' % format(a, ',.2f'),
        lambda: '%s €' % format(a, ',.2f').replace(',', 'X').replace('.', ',').replace('X', '.'),
        lambda: 'EUR %s' % format(a * 10, ',.2f').replace(',', 'X').replace('.', ',').replace('X', '.'),
        lambda: '£%s' % format(a, ',.2f'),
        lambda: 'CHF %s' % format(a, ',.2f').replace(',', "'"),
        lambda: '%s EUR' % format(a * 100, ',.2f').replace(',', ' ').replace('.', ','),
    ])()

def _hash():
    return R.choice([
        lambda: hashlib.sha256(digits(12).encode()).hexdigest(),
        lambda: hashlib.sha1(digits(12).encode()).hexdigest(),
        lambda: hashlib.md5(digits(12).encode()).hexdigest(),
        lambda: hexs(12),
    ])()

def _ticket():
    return R.choice([
        lambda: '%s-%d' % (R.choice(['PAY', 'OPS', 'SUP', 'CRM', 'JIRA', 'BUG']), R.randint(10, 99999)),
        lambda: 'INC%07d' % R.randint(1, 9999999),
        lambda: 'SR-%d%02d%02d-%04d' % (R.randint(2020, 2025), R.randint(1, 12), R.randint(1, 28), R.randint(1, 9999)),
        lambda: 'CASE %08d' % R.randint(1, 99999999),
        lambda: '#%d' % R.randint(1000, 999999),
    ])()

def _track():
    return R.choice([
        lambda: '1Z%s%s%s' % (''.join(R.choice(string.ascii_uppercase + string.digits) for _ in range(6)), '03', digits(8)),
        lambda: 'JJD%s' % digits(18),
        lambda: digits(20),
        lambda: digits(12),
        lambda: '%s%sDE' % (''.join(R.choice(string.ascii_uppercase) for _ in range(2)), digits(9)),
    ])()

def _uuid():
    return str(uuid.UUID(int=R.getrandbits(128), version=4))

def _custno():
    return R.choice([lambda: digits(8), lambda: 'K%s' % digits(7), lambda: '%s-%s' % (digits(4), digits(5)), lambda: digits(6)])()

def _mrn():
    return R.choice([lambda: digits(8), lambda: 'MRN%s' % digits(7), lambda: digits(10)])()

def _last4():
    return R.choice(['**** %s' % digits(4), 'ending in %s' % digits(4), 'XXXX-XXXX-XXXX-%s' % digits(4),
                     '%s******%s' % (R.choice(['4', '5']) + digits(5), digits(4)), '•••• %s' % digits(4)])

def _bic():
    return R.choice(['COBADEFFXXX', 'DEUTDEDBBER', 'BNPAFRPPXXX', 'INGBNL2A', 'RABONL2U', 'BSCHESMMXXX', 'UNCRITMMXXX', 'NWBKGB2L', 'BARCGB22'])

def _exp():
    return '%02d/%02d' % (R.randint(1, 12), R.randint(25, 31))

def _port():
    return str(R.randint(1024, 65535))

def _postcode():
    return R.choice([digits(5), '%s%d %d%s' % (R.choice(['SW', 'EC', 'M', 'LS', 'B']), R.randint(1, 20), R.randint(1, 9), ''.join(R.choice('ABDEFGHJLNPQRSTUWXYZ') for _ in range(2))),
                     '%s %s' % (digits(4), ''.join(R.choice('ABCDEFGHJKLMNPRSTVWXZ') for _ in range(2)))])

GEN = dict(order=_order, build=_build, ver=_ver, ver4=_ver4_hard, oid=_oid, sku=_sku, inv=_inv, ts=_ts, amt=_amt,
           hash=_hash, ticket=_ticket, track=_track, uuid=_uuid, custno=_custno, mrn=_mrn, last4=_last4, bic=_bic,
           exp=_exp, port=_port)

_IP4 = re.compile(r'(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.])')

def suspicious(s):
    """Return a reason if the trap accidentally is a valid identifier by some validator."""
    # Luhn windows of whole digit groups 12..19 digits
    for run in re.finditer(r'\d+(?:[ -]\d+)*', s):
        groups = re.split(r'[ -]', run.group())
        for i in range(len(groups)):
            acc = ''
            for j in range(i, len(groups)):
                acc += groups[j]
                if 12 <= len(acc) <= 19 and luhn_ok(acc):
                    return 'luhn'
    for r in PREGIONS:
        for m in P.PhoneNumberMatcher(s, r, leniency=P.Leniency.VALID):
            return 'phone:' + r
    if re.search(r'\b\d{3}-\d{2}-\d{4}\b', s):
        return 'ssn-shape'
    for m in _IP4.finditer(s):
        if all(int(x) <= 255 for x in m.groups()):
            return 'ipv4'
    if re.fullmatch(r'[A-Z]{2}\d{2}[A-Z0-9]{10,30}', s) and iban_valid(s):
        return 'iban'
    return None

def trap(kind):
    last = None
    for _ in range(50):
        v = GEN[kind]()
        why = suspicious(v)
        if kind in ('ver4', 'oid') and why == 'ipv4':
            return v, kind
        if not why:
            return v, kind
        last = v
    return last, kind + ':ambiguous'
