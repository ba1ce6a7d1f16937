# -*- coding: utf-8 -*-
import json
from ids import R

COLS = {
    'us': dict(name=['full_name', 'Name', 'customer'], email=['email', 'Email Address'], phone=['phone', 'Phone Number', 'tel'],
               mobile=['cell', 'mobile'], card=['card_number', 'cc', 'Card'], ip=['ip_address', 'last_ip'], nat=[('ssn', 'ssn'), ('SSN', 'ssn'), ('itin', 'itin'), ('social_security_number', 'ssn')],
               iban=['iban', 'intl_account'], order=['order_id', 'Order #'], amt=['amount', 'total'], ts=['created_at', 'timestamp'], sku=['sku'], ver=['app_version']),
    'gb': dict(name=['customer_name', 'Name', 'patient'], email=['email', 'E-mail'], phone=['telephone', 'tel_no', 'Phone'],
               mobile=['mobile'], card=['card_no', 'card'], ip=['ip', 'source_ip'], nat=[('nhs_number', 'nhs'), ('NHS No', 'nhs'), ('ni_number', 'nino'), ('NINO', 'nino')],
               iban=['iban'], order=['order_ref'], amt=['amount_gbp', 'balance'], ts=['updated'], sku=['product_code'], ver=['client_version']),
    'de': dict(name=['Name', 'Kunde', 'Vorname Nachname'], email=['E-Mail', 'email'], phone=['Telefon', 'Tel.', 'Festnetz'],
               mobile=['Mobil', 'Handy'], card=['Kartennummer', 'Kreditkarte'], ip=['IP-Adresse', 'ip'], nat=[('Steuer-ID', 'stid'), ('Steuer-IdNr', 'stid'), ('steuerid', 'stid')],
               iban=['IBAN', 'Bankverbindung'], order=['Bestellnummer', 'Auftrag'], amt=['Betrag', 'Summe'], ts=['Datum', 'Zeitstempel'], sku=['Artikelnummer'], ver=['Version']),
    'fr': dict(name=['nom', 'nom_complet', 'Client'], email=['courriel', 'email'], phone=['téléphone', 'tel'],
               mobile=['portable', 'mobile'], card=['numero_carte', 'carte'], ip=['adresse_ip', 'ip'], nat=[('nir', 'nir'), ('num_secu', 'nir'), ('n° sécurité sociale', 'nir')],
               iban=['iban', 'rib_iban'], order=['commande', 'n° commande'], amt=['montant'], ts=['date'], sku=['référence'], ver=['version']),
    'es': dict(name=['nombre', 'cliente', 'titular'], email=['correo', 'email'], phone=['teléfono', 'tel'],
               mobile=['móvil'], card=['tarjeta', 'num_tarjeta'], ip=['ip', 'direccion_ip'], nat=[('nif', 'nif'), ('dni', 'nif'), ('nie', 'nie')],
               iban=['iban', 'cuenta'], order=['pedido'], amt=['importe'], ts=['fecha'], sku=['referencia'], ver=['version']),
    'it': dict(name=['nome', 'nominativo', 'cliente'], email=['email', 'posta'], phone=['telefono', 'tel'],
               mobile=['cellulare'], card=['carta', 'numero_carta'], ip=['indirizzo_ip', 'ip'], nat=[('codice_fiscale', 'cf'), ('cf', 'cf'), ('CF', 'cf')],
               iban=['iban'], order=['ordine', 'n_ordine'], amt=['importo'], ts=['data'], sku=['codice_articolo'], ver=['versione']),
    'nl': dict(name=['naam', 'klant'], email=['e-mail', 'email'], phone=['telefoon', 'tel'],
               mobile=['mobiel'], card=['creditcard', 'kaartnummer'], ip=['ip', 'ip-adres'], nat=[('bsn', 'bsn'), ('BSN', 'bsn'), ('burgerservicenummer', 'bsn')],
               iban=['iban', 'rekening'], order=['ordernummer', 'bestelling'], amt=['bedrag'], ts=['datum'], sku=['artikelnr'], ver=['versie']),
}

def _cell_slot(kind, natslot, rowstyle):
    if kind == 'name':
        return 'name', None
    if kind == 'email':
        return 'email', None
    if kind == 'phone':
        return 'phone', R.choice(['loc', 'loc', 'loc-b', 'any-i', 'loc-x'])
    if kind == 'mobile':
        return 'phone', R.choice(['loc-m', 'loc-m-b', 'any-m'])
    if kind == 'card':
        return 'card', None
    if kind == 'ip':
        return 'ip', None
    if kind == 'nat':
        return natslot, None
    if kind == 'iban':
        return 'iban', None
    return kind, None

def csv_doc(doc, ctx, slot):
    cols = COLS[ctx.loc]
    pii = ['name', 'email', 'phone', 'mobile', 'card', 'ip', 'nat', 'iban']
    k = R.randint(3, 6)
    chosen = R.sample(pii, k) + R.sample(['order', 'amt', 'ts', 'sku', 'ver'], R.randint(1, 3))
    R.shuffle(chosen)
    if 'name' in chosen:
        chosen.remove('name'); chosen.insert(0, 'name')
    heads, natslot = [], None
    for c in chosen:
        h = R.choice(cols[c])
        if c == 'nat':
            h, natslot = h
        heads.append(h)
    delim = R.choice([',', ',', ';', '\t', '|'] if ctx.loc in ('us', 'gb') else [';', ';', ',', '\t', '|'])
    doc.lit(delim.join(heads) + '\n')
    for r in range(R.randint(3, 8)):
        if r:
            doc.lit('\n')
        for j, c in enumerate(chosen):
            if j:
                doc.lit(delim)
            name, arg = _cell_slot(c, natslot, None)
            text, ent, tag, lab = slot(ctx, name, arg)
            q = delim in text or '"' in text
            if q:
                doc.lit('"')
                doc.val(text.replace('"', '""'), ent, tag + ':csvquoted', lab)
                doc.lit('"')
            else:
                doc.val(text, ent, tag + ':csv', lab)

JKEYS = {
    'us': dict(name='name', email='email', phone='phone', mobile='mobile', card='cardNumber', ip='ip', iban='iban', order='orderId', amt='amount', ts='createdAt', sku='sku', ver='appVersion', build='build'),
    'gb': dict(name='full_name', email='email_address', phone='telephone', mobile='mobile', card='card_number', ip='client_ip', iban='iban', order='order_ref', amt='amount', ts='timestamp', sku='product_code', ver='version', build='build_id'),
    'de': dict(name='name', email='email', phone='telefon', mobile='mobil', card='kartennummer', ip='ip', iban='iban', order='bestellnummer', amt='betrag', ts='zeitpunkt', sku='artikel', ver='version', build='build'),
    'fr': dict(name='nom', email='courriel', phone='telephone', mobile='portable', card='carte', ip='ip', iban='iban', order='commande', amt='montant', ts='horodatage', sku='reference', ver='version', build='build'),
    'es': dict(name='nombre', email='correo', phone='telefono', mobile='movil', card='tarjeta', ip='ip', iban='iban', order='pedido', amt='importe', ts='fecha', sku='referencia', ver='version', build='build'),
    'it': dict(name='nome', email='email', phone='telefono', mobile='cellulare', card='carta', ip='ip', iban='iban', order='ordine', amt='importo', ts='data', sku='articolo', ver='versione', build='build'),
    'nl': dict(name='naam', email='email', phone='telefoon', mobile='mobiel', card='creditcard', ip='ip', iban='iban', order='ordernummer', amt='bedrag', ts='tijdstip', sku='artikel', ver='versie', build='build'),
}
NATKEY = {'us': [('ssn', 'ssn'), ('itin', 'itin')], 'gb': [('nhsNumber', 'nhs'), ('nino', 'nino')], 'de': [('steuerId', 'stid')],
          'fr': [('nir', 'nir'), ('numeroSecu', 'nir')], 'es': [('nif', 'nif'), ('nie', 'nie')], 'it': [('codiceFiscale', 'cf')], 'nl': [('bsn', 'bsn')]}

def json_doc(doc, ctx, slot):
    keys = JKEYS[ctx.loc]
    pretty = R.random() < 0.5
    ind = lambda d: ('\n' + '  ' * d) if pretty else ''
    sep = ': ' if pretty else ':'
    groups = [('customer', ['name', 'email', 'phone', 'mobile', 'nat']), ('payment', ['card', 'iban', 'amt']), ('meta', ['ip', 'ts', 'order', 'ver', 'build', 'sku'])]
    doc.lit('{')
    first_g = True
    for gname, fields in groups:
        fs = [f for f in fields if R.random() < 0.75]
        if not fs:
            continue
        if not first_g:
            doc.lit(',')
        first_g = False
        doc.lit(ind(1) + json.dumps(gname) + sep + '{')
        for i, f in enumerate(fs):
            if i:
                doc.lit(',')
            if f == 'nat':
                key, sl = R.choice(NATKEY[ctx.loc]); arg = None
            else:
                key = keys[f]
                sl, arg = _cell_slot(f, None, None)
                if f == 'ts': sl = 'ts'
                if f in ('order', 'amt', 'ver', 'build', 'sku'): sl = f
            doc.lit(ind(2) + json.dumps(key) + sep)
            text, ent, tag, lab = slot(ctx, sl, arg)
            numeric = ent == 'PHONE_NUMBER' and text.isdigit() and not text.startswith('0') and R.random() < 0.5
            if numeric:
                doc.val(text, ent, tag + ':jsonnum', lab)
            else:
                enc = json.dumps(text, ensure_ascii=False)
                assert enc[1:-1] == text, text
                doc.lit('"')
                doc.val(text, ent, tag + ':json', lab)
                doc.lit('"')
        doc.lit(ind(1) + '}')
    doc.lit(ind(0) + '}')
