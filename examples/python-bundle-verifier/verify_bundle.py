#!/usr/bin/env python3
"""Independent verifier for govledger incident bundles (format v1), written from README.md only.

usage: verify_bundle.py BUNDLE [--key VKEY]
exit 0 valid; exit 1 with "line N (section): message" on the first problem.
"""
import base64, binascii, hashlib, re, struct, sys
import nacl.signing, nacl.exceptions

U64_MAX = 2**64 - 1


class Bad(Exception):
    def __init__(self, line, section, msg):
        super().__init__(msg)
        self.line, self.section, self.msg = line, section, msg


def sha(b):
    return hashlib.sha256(b).digest()


def num(s, ln, sec):
    if not re.fullmatch(r'0|[1-9][0-9]*', s) or int(s) > U64_MAX:
        raise Bad(ln, sec, f'bad number {s!r}')
    return int(s)


def b64(s, ln, sec, length=None):
    if not re.fullmatch(r'[A-Za-z0-9+/]*={0,2}', s) or len(s) % 4:
        raise Bad(ln, sec, 'bad base64')
    try:
        d = base64.b64decode(s, validate=True)
    except binascii.Error:
        raise Bad(ln, sec, 'bad base64')
    if base64.b64encode(d).decode() != s:
        raise Bad(ln, sec, 'non-canonical base64')
    if length is not None and len(d) != length:
        raise Bad(ln, sec, f'expected {length} bytes, got {len(d)}')
    return d


def hashes(s, ln, sec):
    if s == '-':
        return []
    parts = s.split(',')
    for p in parts:
        if not re.fullmatch(r'[0-9a-f]{64}', p):
            raise Bad(ln, sec, 'bad hash list')
    return [bytes.fromhex(p) for p in parts]


# ---- RFC 6962 / 9162 ----
def node(l, r):
    return sha(b'\x01' + l + r)


def shift_past_right_edges(fn, sn):
    # RFC 9162 2.1.3.2 / 2.1.4.2: "right-shift fn and sn equally until either
    # LSB(fn) is set or fn is 0"
    while True:
        fn >>= 1; sn >>= 1
        if fn & 1 or fn == 0:
            return fn, sn


def verify_inclusion(index, size, leaf_hash, proof, root):
    # RFC 9162 2.1.3.2
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                fn, sn = shift_past_right_edges(fn, sn)
        else:
            r = node(r, p)
        fn >>= 1; sn >>= 1
    return sn == 0 and r == root


def verify_consistency(n1, n2, root1, root2, proof):
    # RFC 9162 2.1.4.2
    if n1 > n2:
        return False
    if n1 == n2:
        return not proof and root1 == root2
    if n1 == 0:
        return not proof  # any tree extends the empty tree
    path = list(proof)
    if n1 & (n1 - 1) == 0:  # power of two
        path = [root1] + path
    if not path:
        return False
    fn, sn = n1 - 1, n2 - 1
    while fn & 1:
        fn >>= 1; sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr); sr = node(c, sr)
            if not fn & 1:
                fn, sn = shift_past_right_edges(fn, sn)
        else:
            sr = node(sr, c)
        fn >>= 1; sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


# ---- note verifier key ----
def parse_vkey(s, ln, sec):
    parts = s.split('+', 2)
    if len(parts) != 3 or not parts[0] or not re.fullmatch(r'[0-9a-f]{8}', parts[1]):
        raise Bad(ln, sec, 'bad verifier key')
    name, hexid, k = parts
    kb = b64(k, ln, sec, 33)
    if kb[0] != 1:
        raise Bad(ln, sec, 'verifier key is not Ed25519 (0x01)')
    kid = sha(name.encode() + b'\n' + kb)[:4]
    if kid.hex() != hexid:
        raise Bad(ln, sec, 'verifier key id does not match the key')
    return name, kid, kb[1:]


P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P


def is_point(pk):
    # RFC 8032 5.1.3 decoding: does the 32-byte string decompress to a curve point?
    y = int.from_bytes(pk, 'little') & ((1 << 255) - 1)
    sign = pk[31] >> 7
    if y >= P:
        return False
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = (u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P)) % P
    if (v * x * x - u) % P == 0:
        pass
    elif (v * x * x + u) % P == 0:
        x = (x * pow(2, (P - 1) // 4, P)) % P
    else:
        return False
    if x == 0 and sign:
        return False
    return True


def ed_verify(pub, sig, msg):
    try:
        nacl.signing.VerifyKey(pub).verify(msg, sig)  # libsodium: canonical S, rejects small-order keys
        return True
    except (nacl.exceptions.BadSignatureError, ValueError, nacl.exceptions.CryptoError):
        return False


def check_note(note, vkey, origin, size, ln):
    sec = 'checkpoint'
    try:
        text = note.decode('utf-8')
    except UnicodeDecodeError:
        raise Bad(ln, sec, 'note is not UTF-8')
    i = text.find('\n\n')
    if i < 0:
        raise Bad(ln, sec, 'note has no blank line')
    signed, sigs = text[:i + 1], text[i + 2:]
    if not sigs.endswith('\n') or not sigs:
        raise Bad(ln, sec, 'note signatures do not end in a newline')
    name, kid, pub = vkey
    ok = False
    for sl in sigs[:-1].split('\n'):
        m = re.fullmatch(r'\u2014 (\S+) (\S+)', sl)
        if not m:
            raise Bad(ln, sec, 'malformed signature line')
        try:
            sb = base64.b64decode(m.group(2), validate=True)
        except binascii.Error:
            raise Bad(ln, sec, 'bad signature base64')
        if len(sb) < 5:
            raise Bad(ln, sec, 'short signature')
        if m.group(1) == name and sb[:4] == kid:
            if len(sb) != 68 or not ed_verify(pub, sb[4:], signed.encode()):
                raise Bad(ln, sec, 'checkpoint signature does not verify with the log key')
            ok = True
    if not ok:
        raise Bad(ln, sec, 'no signature by the log key')
    body = signed[:-1].split('\n')
    if len(body) < 3:
        raise Bad(ln, sec, 'checkpoint body too short')
    if body[0] != origin:
        raise Bad(ln, sec, 'checkpoint names another origin')
    if body[1] != str(size) or num(body[1], ln, sec) != size:
        raise Bad(ln, sec, 'checkpoint size differs from the line')
    return b64(body[2], ln, sec, 32)


# ---- entry decoding (GLE1 + bincode 2 fixed-int LE) ----
class Rd:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        if self.p + n > len(self.b):
            raise ValueError('truncated')
        r = self.b[self.p:self.p + n]; self.p += n
        return r

    def u64(self):
        return struct.unpack('<Q', self.take(8))[0]

    def u32(self):
        return struct.unpack('<I', self.take(4))[0]

    def bytes_(self):
        return self.take(self.u64())

    def string(self):
        return self.bytes_().decode('utf-8')

    def opt(self, f):
        t = self.take(1)[0]
        if t == 0:
            return None
        if t == 1:
            return f()
        raise ValueError('bad option tag')


def decode_entry(b):
    r = Rd(b)
    if r.take(4) != b'GLE1':
        raise ValueError('bad magic')
    e = {'seq': r.u64(), 'stream_seq': r.u64(), 'time_ns': r.u64(), 'subject': r.string(),
         'key_id': r.opt(r.string), 'signature': r.opt(r.bytes_), 'body_sha256': r.take(32),
         'body_len': r.u64(), 'body': r.opt(r.bytes_)}
    tag = r.u32()
    if tag == 0:
        e.update(verdict='accepted', event_id=r.string(), event_type=r.string(), tenant=r.string())
    elif tag == 1:
        reason = r.u32()
        if reason > 15:
            raise ValueError('unknown reason')
        e.update(verdict='rejected', reason=reason, detail=r.string(),
                 event_id=r.opt(r.string), tenant=r.opt(r.string))
    else:
        raise ValueError('bad verdict tag')
    if r.p != len(b):
        raise ValueError('trailing bytes')
    if e['body'] is not None:
        if len(e['body']) != e['body_len'] or sha(e['body']) != e['body_sha256']:
            raise ValueError('body does not match its recorded length/SHA-256')
    return e


def verify(data, given_key=None):
    # framing
    if not data.endswith(b'\n'):
        raise Bad(data.count(b'\n') + 1, 'file', 'file does not end in LF')
    raw_lines = data[:-1].split(b'\n')
    lines = []
    for i, rl in enumerate(raw_lines, 1):
        try:
            lines.append(rl.decode('utf-8'))
        except UnicodeDecodeError:
            raise Bad(i, 'file', 'not UTF-8')
    n = len(lines)
    if n < 8:
        raise Bad(n + 1, 'file', 'bundle too short')

    def fields(i, sec, k=None):
        s = lines[i - 1]
        if '\r' in s:
            raise Bad(i, sec, 'CR in line')
        f = s.split(' ')
        if k is not None and len(f) != k:
            raise Bad(i, sec, f'expected {k} fields')
        if any(x == '' for x in f):
            raise Bad(i, sec, 'empty field / extra space')
        return f

    # header
    if lines[0] != 'govledger-bundle v1':
        raise Bad(1, 'header', 'bad magic line')
    if not lines[1].startswith('origin ') or len(lines[1]) == 7 or '\r' in lines[1]:
        raise Bad(2, 'header', 'bad origin line')
    origin = lines[1][7:]
    f = fields(3, 'header', 2)
    if f[0] != 'log-key':
        raise Bad(3, 'header', 'expected log-key')
    vkey = parse_vkey(f[1], 3, 'header')
    if given_key is not None and f[1] != given_key:
        raise Bad(3, 'header', 'bundle log key is not the key given')
    f = fields(4, 'header', 4)
    if f[0] != 'filter' or not f[1].startswith('tenant=') or not f[2].startswith('agent=') \
            or not f[3].startswith('session=') or min(len(f[1]), len(f[2]) - 6, len(f[3]) - 8) < 1 \
            or len(f[1]) == 7:
        raise Bad(4, 'header', 'bad filter line')
    ftenant = f[1][7:]
    f = fields(5, 'header', 3)
    if f[0] != 'range':
        raise Bad(5, 'header', 'expected range')
    rfrom, rto = num(f[1], 5, 'header'), num(f[2], 5, 'header')
    if rfrom > rto:
        raise Bad(5, 'header', 'range from > to')

    i = 6
    cps = []  # (size, root, line)
    while i <= n and lines[i - 1].startswith('checkpoint '):
        f = fields(i, 'checkpoint', 3)
        size = num(f[1], i, 'checkpoint')
        note = b64(f[2], i, 'checkpoint')
        if cps and size <= cps[-1][0]:
            raise Bad(i, 'checkpoint', 'sizes not strictly ascending')
        cps.append([size, note, i])
        i += 1
    if not cps:
        raise Bad(i, 'checkpoint', 'expected a checkpoint line')
    # verify checkpoint notes
    for c in cps:
        c[1] = check_note(c[1], vkey, origin, c[0], c[2])
    for k in range(len(cps) - 1):
        if i > n or not lines[i - 1].startswith('consistency '):
            raise Bad(i, 'consistency', 'expected a consistency line')
        f = fields(i, 'consistency', 4)
        a, b = num(f[1], i, 'consistency'), num(f[2], i, 'consistency')
        if (a, b) != (cps[k][0], cps[k + 1][0]):
            raise Bad(i, 'consistency', 'sizes do not name consecutive checkpoints')
        if not verify_consistency(a, b, cps[k][1], cps[k + 1][1], hashes(f[3], i, 'consistency')):
            raise Bad(i, 'consistency', 'consistency proof fails')
        i += 1
    entries = []
    while i <= n and lines[i - 1].startswith('entry '):
        f = fields(i, 'entry', 5)
        seq = num(f[1], i, 'entry'); cpsize = num(f[2], i, 'entry')
        leaf = b64(f[3], i, 'entry'); proof = hashes(f[4], i, 'entry')
        if entries and seq <= entries[-1][0]:
            raise Bad(i, 'entry', 'seqs not strictly ascending')
        entries.append((seq, cpsize, leaf, proof, i))
        i += 1
    if not entries:
        raise Bad(i, 'entry', 'expected an entry line')
    signers = {}
    last_kid = None
    while i <= n and lines[i - 1].startswith('signer '):
        f = fields(i, 'signer', 3)
        kid = f[1]
        pk = b64(f[2], i, 'signer', 32)
        if not is_point(pk):
            raise Bad(i, 'signer', 'not a 32-byte Ed25519 public key')
        if last_kid is not None and kid.encode() <= last_kid.encode():
            raise Bad(i, 'signer', 'key ids not strictly ascending')
        last_kid = kid
        signers[kid] = [pk, i, False]
        i += 1
    if i != n:
        raise Bad(i + 1 if i < n and lines[i - 1].startswith('sha256 ') else i, 'sha256' if i < n else 'file', 'nothing may follow the sha256 line' if i < n else 'missing sha256 line')
    f = fields(n, 'sha256', 2)
    if f[0] != 'sha256' or not re.fullmatch(r'[0-9a-f]{64}', f[1]):
        raise Bad(n, 'sha256', 'bad sha256 line')

    # entries
    for seq, cpsize, leaf, proof, ln in entries:
        cp = next((c for c in cps if c[0] > seq), cps[-1])
        if cpsize != cp[0]:
            raise Bad(ln, 'entry', 'entry names the wrong checkpoint')
        if not verify_inclusion(seq, cp[0], sha(b'\x00' + leaf), proof, cp[1]):
            raise Bad(ln, 'entry', 'inclusion proof fails')
        try:
            e = decode_entry(leaf)
        except (ValueError, UnicodeDecodeError, struct.error) as ex:
            raise Bad(ln, 'entry', f'leaf does not decode: {ex}')
        if e['seq'] != seq:
            raise Bad(ln, 'entry', 'leaf seq differs')
        if not rfrom <= e['time_ns'] <= rto:
            raise Bad(ln, 'entry', 'event time outside the range')
        if ftenant != '*' and e['tenant'] != ftenant:
            raise Bad(ln, 'entry', 'entry of another tenant')
        if e['body'] is not None:
            if e['key_id'] is None or e['signature'] is None:
                raise Bad(ln, 'entry', 'body without key id or signature')
            s = signers.get(e['key_id'])
            if s is None:
                raise Bad(ln, 'entry', f'no signer line for {e["key_id"]}')
            if len(e['signature']) != 64 or not ed_verify(s[0], e['signature'], e['body']):
                raise Bad(s[1], 'signer', f'key {e["key_id"]} does not verify the signature on entry {seq} (line {ln})')
            s[2] = True
    for kid, (pk, ln, used) in signers.items():
        if not used:
            raise Bad(ln, 'signer', 'signer used by no entry')
    body = data[:len(data) - len(lines[-1].encode()) - 1]
    if sha(body).hex() != f[1]:
        raise Bad(n, 'sha256', 'checksum mismatch')
    return len(entries), len(cps), len(signers)


def main():
    args = sys.argv[1:]
    key = None
    if '--key' in args:
        k = args.index('--key'); key = args[k + 1]; del args[k:k + 2]
    path = args[0]
    data = open(path, 'rb').read()
    try:
        e, c, s = verify(data, key)
    except Bad as b:
        print(f'INVALID: {path}: line {b.line} ({b.section}): {b.msg}')
        sys.exit(1)
    print(f'OK: {e} entries, {c} checkpoints, {s} signers')


if __name__ == '__main__':
    main()
