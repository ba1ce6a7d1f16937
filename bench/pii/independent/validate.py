"""Independent check of every gold label in corpus.jsonl (+ meta tags)."""
import json, re, sys, collections, ipaddress
import phonenumbers as P
import ids

bad = collections.Counter(); tot = collections.Counter()
def ok(ent, v, tag):
    d = re.sub(r'\D', '', v)
    if ent == 'CREDIT_CARD':
        return ids.luhn_ok(d) and 13 <= len(d) <= 19
    if ent == 'IBAN_CODE':
        return ids.iban_valid(v)
    if ent == 'PHONE_NUMBER':
        reg = tag.split(':')[1]
        try:
            n = P.parse('+' + v[2:] if v.startswith('00') else v, reg)
        except P.NumberParseException:
            return False
        return P.is_valid_number(n) and P.region_code_for_number(n) in (reg, 'US', 'CA') if reg in ('US', 'CA') else P.is_valid_number(n)
    if ent == 'IP_ADDRESS':
        try:
            ipaddress.ip_address(v.split('%')[0]); return True
        except ValueError:
            return False
    if ent == 'EMAIL_ADDRESS':
        return re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s.]+", v) is not None
    if ent == 'US_SSN':
        return len(d) == 9 and d[:3] not in ('000', '666') and d[0] != '9' and d[3:5] != '00' and d[5:] != '0000'
    if ent == 'US_ITIN':
        return len(d) == 9 and d[0] == '9'
    if ent == 'UK_NHS':
        s = sum(int(c) * w for c, w in zip(d, range(10, 1, -1))); c = (11 - s % 11) % 11
        return len(d) == 10 and c == int(d[9])
    if ent == 'UK_NINO':
        return re.fullmatch(r'[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d\d ?\d\d ?\d\d ?[A-D]', v) is not None
    if ent == 'DE_TAX_ID':
        return len(d) == 11 and ids.de_taxid_check(d[:10]) == int(d[10])
    if ent == 'FR_NIR':
        x = v.replace(' ', ''); n = x[:13].replace('2A', '19').replace('2B', '18')
        return len(x) == 15 and 97 - int(n) % 97 == int(x[13:])
    if ent == 'ES_NIF':
        return ids.NIF_LETTERS[int(d) % 23] == v[-1]
    if ent == 'ES_NIE':
        return ids.NIF_LETTERS[int(str('XYZ'.index(v[0])) + d) % 23] == v[-1]
    if ent == 'NL_BSN':
        return len(d) == 9 and (sum(int(c) * w for c, w in zip(d[:8], range(9, 1, -1))) - int(d[8])) % 11 == 0
    if ent == 'IN_AADHAAR':
        return len(d) == 12 and ids.verhoeff_ok(d)
    if ent == 'IT_FISCAL_CODE':
        tot_ = sum(ids.CF_ODD[ch] if i % 2 == 0 else ids.CF_EVEN[ch] for i, ch in enumerate(v[:15]))
        return chr(65 + tot_ % 26) == v[15]
    return True

fmt = collections.Counter()
for line, mline in zip(open('corpus.jsonl', encoding='utf-8'), open('corpus.meta.jsonl', encoding='utf-8')):
    d = json.loads(line); m = json.loads(mline); t = d['text']
    tags = {(s, e): tag for s, e, ent, tag in m['items']}
    for s, e, ent in d['spans']:
        v = t[s:e]; tag = tags[(s, e)]
        tot[ent] += 1
        fmt[tag.split(':csv')[0].split(':json')[0]] += 1
        if not ok(ent, v, tag):
            bad[ent] += 1
            if bad[ent] <= 5:
                print('INVALID', ent, repr(v), tag)
print('gold counts:', dict(sorted(tot.items())))
print('invalid:', dict(bad))
trapc = collections.Counter()
for mline in open('corpus.meta.jsonl', encoding='utf-8'):
    for s, e, ent, tag in json.loads(mline)['items']:
        if ent == 'TRAP':
            trapc[tag.split(':')[1] + (':ambiguous' if 'ambiguous' in tag else '')] += 1
print('traps:', dict(sorted(trapc.items())))
if '-v' in sys.argv:
    for k, v in sorted(fmt.items()):
        print(' ', k, v)
