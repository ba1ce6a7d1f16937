"""Number-plan-valid phone numbers (validated with libphonenumber's Python port), in the ways people write them."""
import phonenumbers as P
from phonenumbers import PhoneNumberType as T, PhoneNumberFormat as F
from ids import R, digits

REGIONS = ['US', 'GB', 'DE', 'FR', 'IT', 'NL', 'IN', 'IL', 'CA', 'BR', 'ES']
_pool = {}

def _gen(region, kind):
    ex = P.example_number_for_type(region, kind)
    nn = str(ex.national_number)
    lead = '0' * (ex.number_of_leading_zeros or 1) if ex.italian_leading_zero else ''
    for _ in range(5000):
        keep = R.choice([1, 1, 2, 3])
        ln = len(nn) + (R.choice([-1, 0, 0, 1]) if region in ('DE', 'IT', 'IL') else 0)
        cand = nn[:keep] + digits(ln - keep)
        try:
            num = P.parse('+%d%s%s' % (ex.country_code, lead, cand), None)
        except P.NumberParseException:
            continue
        if not P.is_valid_number(num):
            continue
        t = P.number_type(num)
        if kind == T.FIXED_LINE and t not in (T.FIXED_LINE, T.FIXED_LINE_OR_MOBILE):
            continue
        if kind == T.MOBILE and t not in (T.MOBILE, T.FIXED_LINE_OR_MOBILE):
            continue
        # avoid fictional 555-01xx only partly; keep whatever is valid
        return num
    raise RuntimeError((region, kind))

def number(region, kind):
    key = (region, kind)
    if key not in _pool:
        _pool[key] = [_gen(region, kind) for _ in range(400)]
    return R.choice(_pool[key])

EXT = {
    'US': [' x{e}', ' ext. {e}', ' Ext {e}', ', ext {e}', ' x.{e}'],
    'CA': [' x{e}', ' ext. {e}', ' poste {e}'],
    'GB': [' ext. {e}', ' ext {e}', ' x{e}', ' (ext. {e})'],
    'DE': ['-{e}'],
    'FR': [' poste {e}', ' (poste {e})'],
    'IT': [' int. {e}', ' interno {e}'],
    'NL': [' toestel {e}', ' tst. {e}'],
    'ES': [' ext. {e}', ' extensión {e}'],
    'IN': [' ext. {e}', ' Extn. {e}'],
    'IL': [' ext. {e}', ' שלוחה {e}'],
    'BR': [' ramal {e}'],
}

def fmt(num, region, style=None, ext=False):
    """Return (string, label_span_end_offset_or_None, tag). Label covers number (and DE glued extension)."""
    nat = P.format_number(num, F.NATIONAL)
    intl = P.format_number(num, F.INTERNATIONAL)
    e164 = P.format_number(num, F.E164)
    cc = num.country_code
    trunk0 = nat.startswith('0') or nat.startswith('(0')
    styles = ['intl', 'nat', 'e164', '00']
    if region in ('GB', 'DE', 'NL', 'FR') :
        styles += ['paren0', 'paren0']
    if region in ('US', 'CA'):
        styles += ['us_dash', 'us_dot', 'us_1dash', 'us_plus_paren', 'nat', 'nat']
    if region == 'FR':
        styles += ['fr_dots', 'nat', 'nat']
    if region == 'DE':
        styles += ['de_slash', 'de_paren', 'de_dash', 'nat', 'de_plus0']
    if region == 'NL':
        styles += ['nl_dash', 'nat']
    if region == 'GB':
        styles += ['gb_paren', 'nat', 'nat']
    if region == 'IT':
        styles += ['nat', 'it_compact']
    if region == 'IN':
        styles += ['in_0', 'nat']
    if region == 'BR':
        styles += ['nat']
    if region == 'IL':
        styles += ['nat']
    if region == 'ES':
        styles = ['intl', 'e164', '00']
    st = style or R.choice(styles)
    nsn = P.national_significant_number(num)
    if st == 'intl':
        s = intl
    elif st == 'nat':
        s = nat
    elif st == 'e164':
        s = e164
    elif st == '00':
        s = '00' + intl[1:]
    elif st == 'paren0':
        rest = nat[1:] if nat.startswith('0') else nat
        s = '+%d (0)%s' % (cc, rest)
        if region == 'DE' and R.random() < 0.5:
            s = '+%d (0) %s' % (cc, rest)
    elif st == 'us_dash':
        s = '%s-%s-%s' % (nsn[:3], nsn[3:6], nsn[6:])
    elif st == 'us_dot':
        s = '%s.%s.%s' % (nsn[:3], nsn[3:6], nsn[6:])
    elif st == 'us_1dash':
        s = '1-%s-%s-%s' % (nsn[:3], nsn[3:6], nsn[6:])
    elif st == 'us_plus_paren':
        s = '+1 (%s) %s-%s' % (nsn[:3], nsn[3:6], nsn[6:])
    elif st == 'fr_dots':
        s = nat.replace(' ', '.')
    elif st in ('de_slash', 'de_paren', 'de_dash'):
        area, _, sub = nat.partition(' ')
        sub = sub.replace(' ', '')
        s = {'de_slash': '%s/%s', 'de_paren': '(%s) %s', 'de_dash': '%s-%s'}[st] % (area, sub)
    elif st == 'de_plus0':
        s = '+49 (0)' + nat[1:].replace(' ', '', 0)
    elif st == 'nl_dash':
        area, _, sub = nat.partition(' ')
        s = '%s-%s' % (area, sub.replace(' ', ''))
    elif st == 'gb_paren':
        area, _, sub = nat.partition(' ')
        s = '(%s) %s' % (area, sub)
    elif st == 'it_compact':
        s = nat.replace(' ', '')
    elif st == 'in_0':
        s = '0' + nsn[:5] + ' ' + nsn[5:] if len(nsn) == 10 else nat
    elif st == 'bare':
        s = ('0' + nsn) if (trunk0 and region not in ('US', 'CA', 'IN')) else nsn
        if region == 'IT':
            s = nsn
    elif st == 'bare_e164':
        s = e164
    else:
        raise ValueError(st)
    lab = s
    tag = 'phone:%s:%s' % (region, st)
    if ext:
        e = str(R.randint(1, 9999)) if region != 'DE' else str(R.randint(10, 999))
        x = R.choice(EXT.get(region, [' ext. {e}'])).format(e=e)
        if region == 'DE':
            # German Durchwahl glued to the number: the whole thing is the number
            s = s + x
        else:
            s = s + x
        tag += ':ext'
    return s, len(lab), tag

def check(s, region):
    """Is s (or its label prefix) a valid number according to libphonenumber?"""
    try:
        n = P.parse(s, region)
    except P.NumberParseException:
        return False
    return P.is_valid_number(n)

def phone(region, kind=None, style=None, ext=False):
    kind = kind if kind is not None else R.choice([T.FIXED_LINE, T.MOBILE])
    if ext:
        kind = T.FIXED_LINE  # extensions / Durchwahl / poste belong to switchboard lines
    if region in ('US', 'CA'):
        kind = T.FIXED_LINE
    num = number(region, kind)
    return fmt(num, region, style, ext)
