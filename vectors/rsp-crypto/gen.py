#!/usr/bin/env python3
"""Generates the computed vectors of vectors/rsp-crypto/ with pyca/cryptography, independently of
simlab's Rust code (written from SGP.22 v2.5 §2.5.4, §2.6.5, §2.6.6, Annex G and GP SCP03).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install cryptography==50.0.2
    /tmp/v/bin/python vectors/rsp-crypto/gen.py

Writes session_keys.json, scp03t.json, ecdsa.json and download.json beside this script. All
inputs are fixed, except ECDSA signatures (pyca signs with a random nonce): rerunning rewrites
ecdsa.json and download.json with different but equally valid signatures.
"""

import hashlib
import json
import os

import cryptography
from cryptography.hazmat.primitives import cmac, hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

HERE = os.path.dirname(os.path.abspath(__file__))
PROVENANCE = (
    f"computed with pyca/cryptography {cryptography.__version__} by vectors/rsp-crypto/gen.py "
    "(independent of the Rust code; see README.md)"
)
CURVES = {"NistP256": ec.SECP256R1(), "BrainpoolP256r1": ec.BrainpoolP256R1()}


def h(b: bytes) -> str:
    return b.hex().upper()


def ber_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


def tlv(tag: bytes, value: bytes) -> bytes:
    return tag + ber_len(len(value)) + value


def uncompressed(pub) -> bytes:
    return pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def scalar(seed: bytes) -> bytes:
    """A fixed private scalar: SHA-256(seed) with the top two bits cleared, so it is below the
    order of both curves (brainpoolP256r1's order starts with A9FB)."""
    d = bytearray(hashlib.sha256(seed).digest())
    d[0] &= 0x3F
    return bytes(d)


def key_from_scalar(curve, d: bytes):
    return ec.derive_private_key(int.from_bytes(d, "big"), curve)


# --- session keys: ECKA + X9.63 KDF (SGP.22 §2.6.5, Annex G) ---------------------------------

def session_keys(shs: bytes, host_id: bytes, eid: bytes):
    shared_info = bytes([0x88, 0x10, len(host_id)]) + host_id + bytes([len(eid)]) + eid
    out = X963KDF(algorithm=hashes.SHA256(), length=48, sharedinfo=shared_info).derive(shs)
    return shared_info, out[:16], out[16:32], out[32:]


def gen_session_keys():
    cases = []
    eid = bytes.fromhex("89049032123451234512345678901235")
    for name, curve in CURVES.items():
        for host_id in (b"", bytes(range(16)), b"simlab-host"):
            euicc_d = scalar(b"euicc-ot " + name.encode() + host_id)
            smdp_d = scalar(b"smdp-ot " + name.encode() + host_id)
            euicc = key_from_scalar(curve, euicc_d)
            smdp = key_from_scalar(curve, smdp_d)
            shs = euicc.exchange(ec.ECDH(), smdp.public_key())
            assert shs == smdp.exchange(ec.ECDH(), euicc.public_key())
            info, mcv, s_enc, s_mac = session_keys(shs, host_id, eid)
            cases.append({
                "curve": name,
                "euicc_ot_sk": h(euicc_d),
                "euicc_ot_pk": h(uncompressed(euicc.public_key())),
                "smdp_ot_sk": h(smdp_d),
                "smdp_ot_pk": h(uncompressed(smdp.public_key())),
                "shs": h(shs),
                "host_id": h(host_id),
                "eid": h(eid),
                "shared_info": h(info),
                "initial_mcv": h(mcv),
                "s_enc": h(s_enc),
                "s_mac": h(s_mac),
            })
    return {"_provenance": PROVENANCE, "cases": cases}


# --- SCP03t segments (SGP.22 §2.5.4 / §2.6.6, GP SCP03) ----------------------------------------

class Scp03t:
    def __init__(self, s_enc: bytes, s_mac: bytes, mcv: bytes):
        self.s_enc, self.s_mac, self.mcv, self.counter = s_enc, s_mac, mcv, 1

    def _icv(self) -> bytes:
        enc = Cipher(algorithms.AES(self.s_enc), modes.ECB()).encryptor()
        return enc.update(self.counter.to_bytes(16, "big")) + enc.finalize()

    def _seal(self, tag: int, payload: bytes) -> bytes:
        header = bytes([tag]) + ber_len(len(payload) + 8)
        c = cmac.CMAC(algorithms.AES(self.s_mac))
        c.update(self.mcv + header + payload)
        full = c.finalize()
        self.mcv = full
        self.counter += 1
        return header + payload + full[:8]

    def encrypt_and_mac(self, tag: int, data: bytes) -> bytes:
        padded = data + b"\x80" + b"\x00" * ((15 - len(data)) % 16)
        assert len(padded) % 16 == 0 and len(padded) > len(data)
        enc = Cipher(algorithms.AES(self.s_enc), modes.CBC(self._icv())).encryptor()
        return self._seal(tag, enc.update(padded) + enc.finalize())

    def mac_only(self, tag: int, data: bytes) -> bytes:
        return self._seal(tag, data)


def gen_scp03t():
    s_enc = bytes.fromhex("404142434445464748494A4B4C4D4E4F")
    s_mac = bytes.fromhex("505152535455565758595A5B5C5D5E5F")
    mcv = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    ppk_enc = bytes.fromhex("606162636465666768696A6B6C6D6E6F")
    ppk_mac = bytes.fromhex("707172737475767778797A7B7C7D7E7F")
    ppk_mcv = bytes.fromhex("808182838485868788898A8B8C8D8E8F")
    rsk = tlv(b"\xBF\x26", tlv(b"\x80", ppk_mcv) + tlv(b"\x81", ppk_enc) + tlv(b"\x82", ppk_mac))
    upp = bytes((i * 7 + 3) & 0xFF for i in range(300))
    # (kind, tag, data): ConfigureISDP, StoreMetadata, ReplaceSessionKeys, then the UPP with
    # the replaced keys in chunks of 0x20 (block aligned: a whole padding block), 0x85 (BER
    # length 81 xx) and the rest; last a 257-byte MAC-only segment (BER length 82 xx xx). The
    # trailing 88 is not a real BPP order; it exercises the codec.
    steps = [
        ("encrypt", 0x87, bytes.fromhex("BF2400")),
        ("mac", 0x88, tlv(b"\xBF\x25", tlv(b"\x5A", bytes.fromhex("989410325476981032F4")))),
        ("encrypt", 0x87, rsk),
        ("replace", None, None),
        ("encrypt", 0x86, upp[:0x20]),
        ("encrypt", 0x86, upp[0x20:0x20 + 0x85]),
        ("encrypt", 0x86, upp[0x20 + 0x85:]),
        ("mac", 0x88, bytes(range(256)) + b"\x01"),
    ]
    bsp = Scp03t(s_enc, s_mac, mcv)
    segments = []
    for kind, tag, data in steps:
        if kind == "replace":
            bsp = Scp03t(ppk_enc, ppk_mac, ppk_mcv)
            segments.append({"replace_session_keys": True})
            continue
        counter, mcv_in = bsp.counter, bsp.mcv
        wire = bsp.encrypt_and_mac(tag, data) if kind == "encrypt" else bsp.mac_only(tag, data)
        segments.append({
            "tag": f"{tag:02X}",
            "protection": kind,
            "counter": counter,
            "mcv_in": h(mcv_in),
            "data": h(data),
            "wire": h(wire),
        })
    return {
        "_provenance": PROVENANCE,
        "s_enc": h(s_enc), "s_mac": h(s_mac), "initial_mcv": h(mcv),
        "ppk_enc": h(ppk_enc), "ppk_mac": h(ppk_mac), "ppk_initial_mcv": h(ppk_mcv),
        "segments": segments,
    }


# --- ECDSA (raw r||s per BSI TR-03111, DER per RFC 3279) --------------------------------------

def raw_sig(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def gen_ecdsa():
    cases = []
    for name, curve in CURVES.items():
        d = scalar(b"ecdsa " + name.encode())
        key = key_from_scalar(curve, d)
        for msg in (b"", b"abc", bytes(range(200))):
            der = key.sign(msg, ec.ECDSA(hashes.SHA256()))
            cases.append({
                "curve": name,
                "sk": h(d),
                "pk": h(uncompressed(key.public_key())),
                "msg": h(msg),
                "der": h(der),
                "raw": h(raw_sig(der)),
            })
    return {"_provenance": PROVENANCE, "cases": cases}


# --- download pieces: hashCc, BF23 (SGP.22 §3.1.3.1, §5.5.1) -----------------------------------

def gen_download():
    with open(os.path.join(HERE, "sgp26", "SK_S_SM_DPpb_ECDSA_NIST.pem"), "rb") as f:
        pem = f.read()
    start = pem.index(b"-----BEGIN EC PRIVATE KEY-----")
    dp_pb = serialization.load_pem_private_key(pem[start:], password=None)
    tx = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")
    host_id = b"simlab-host"
    smdp_ot = key_from_scalar(ec.SECP256R1(), scalar(b"bf23 smdp"))
    euicc_ot = key_from_scalar(ec.SECP256R1(), scalar(b"bf23 euicc"))
    smdp_otpk, euicc_otpk = uncompressed(smdp_ot.public_key()), uncompressed(euicc_ot.public_key())
    crt = tlv(b"\x80", b"\x88") + tlv(b"\x81", b"\x10") + tlv(b"\x84", host_id)
    signed = tlv(b"\x82", b"\x01") + tlv(b"\x80", tx) + tlv(b"\xA6", crt) + tlv(b"\x5F\x49", smdp_otpk)
    to_sign = signed + tlv(b"\x5F\x49", euicc_otpk)
    sig = raw_sig(dp_pb.sign(to_sign, ec.ECDSA(hashes.SHA256())))
    bf23 = tlv(b"\xBF\x23", signed + tlv(b"\x5F\x37", sig))
    hash_cc = [
        {"code": h(code), "transaction_id": h(tx),
         "hash_cc": h(hashlib.sha256(hashlib.sha256(code).digest() + tx).digest())}
        for code in (b"", b"1234", b"confirmation-code-0001")
    ]
    return {
        "_provenance": PROVENANCE,
        "bf23": {
            "transaction_id": h(tx), "host_id": h(host_id),
            "smdp_otpk": h(smdp_otpk), "euicc_otpk": h(euicc_otpk),
            "signature_input": h(to_sign), "smdp_sign": h(sig), "der": h(bf23),
            "signed_with": "sgp26/SK_S_SM_DPpb_ECDSA_NIST.pem",
        },
        "hash_cc": hash_cc,
    }


def main():
    for name, data in (
        ("session_keys.json", gen_session_keys()),
        ("scp03t.json", gen_scp03t()),
        ("ecdsa.json", gen_ecdsa()),
        ("download.json", gen_download()),
    ):
        with open(os.path.join(HERE, name), "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
