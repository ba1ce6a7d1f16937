"""Map `custodia scan --format json` findings (byte offsets) back to gold spans / traps per document."""
import json, sys, os, collections, subprocess
CORPUS = sys.argv[1] if len(sys.argv) > 1 else 'corpus.jsonl'
META = CORPUS.replace('.jsonl', '.meta.jsonl')
DOCS = 'docs'
IDENT = {'EMAIL_ADDRESS', 'PHONE_NUMBER', 'CREDIT_CARD', 'IBAN_CODE', 'IP_ADDRESS', 'US_SSN', 'US_ITIN', 'UK_NHS', 'UK_NINO',
         'DE_TAX_ID', 'FR_NIR', 'ES_NIF', 'ES_NIE', 'IT_FISCAL_CODE', 'NL_BSN', 'IN_AADHAAR'}
NOT_GATED = {'PERSON', 'LOCATION', 'ADDRESS', 'DATE_TIME', 'URL'}

docs = [json.loads(l) for l in open(CORPUS, encoding='utf-8')]
metas = [json.loads(l) for l in open(META, encoding='utf-8')]
if '--write' in sys.argv:
    os.makedirs(DOCS, exist_ok=True)
    for f in os.listdir(DOCS):
        os.remove(os.path.join(DOCS, f))
    for i, d in enumerate(docs):
        with open(os.path.join(DOCS, '%05d.txt' % i), 'w', encoding='utf-8') as fh:
            fh.write(d['text'])
    sys.exit(0)

finds = collections.defaultdict(list)
for line in open('scan.jsonl', encoding='utf-8'):
    f = json.loads(line)
    i = int(os.path.basename(f['path']).split('.')[0])
    b = docs[i]['text'].encode('utf-8')
    s = len(b[:f['start']].decode('utf-8')); e = len(b[:f['end']].decode('utf-8'))
    finds[i].append((s, e, f['entity_type'], f['score']))

def ctx(t, s, e, w=40):
    return (t[max(0, s - w):s] + '[[' + t[s:e] + ']]' + t[e:e + w]).replace('\n', '\\n')

miss = collections.defaultdict(list); fp = collections.defaultdict(list)
rec = collections.Counter(); recn = collections.Counter(); prec = collections.Counter(); precn = collections.Counter()
for i, d in enumerate(docs):
    t = d['text']; items = metas[i]['items']
    tags = {(s, e): tag for s, e, ent, tag in items}
    fl = finds.get(i, [])
    for s, e, ent in d['spans']:
        recn[ent] += 1
        if any(fe == ent and fs < e and s < ff for fs, ff, fe, sc in fl):
            rec[ent] += 1
        else:
            other = [(fe, t[fs:ff]) for fs, ff, fe, sc in fl if fs < e and s < ff]
            miss[ent].append((tags[(s, e)], ctx(t, s, e), t[s:e], other, i))
    for fs, ff, fe, sc in fl:
        precn[fe] += 1
        if any(ent == fe and fs < e and s < ff for s, e, ent in d['spans']):
            prec[fe] += 1
        else:
            over = [(ent, tag) for s, e, ent, tag in items if fs < e and s < ff]
            fp[fe].append((over, ctx(t, fs, ff), t[fs:ff], sc, i))

print('%-16s %11s %7s %11s %7s' % ('entity', 'recall', '', 'precision', ''))
for ent in sorted(set(recn) | set(precn)):
    if ent in NOT_GATED:
        continue
    r = rec[ent] / recn[ent] if recn[ent] else float('nan')
    p = prec[ent] / precn[ent] if precn[ent] else float('nan')
    print('%-16s %5d/%-5d %.3f %5d/%-5d %.3f' % (ent, rec[ent], recn[ent], r, prec[ent], precn[ent], p))
json.dump({'miss': miss, 'fp': fp}, open('errors.json', 'w'), ensure_ascii=False, indent=0)
