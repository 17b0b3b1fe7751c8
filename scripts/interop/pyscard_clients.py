#!/usr/bin/env python3
"""simlab's cards through a real pcscd, driven by an independent PC/SC client (pyscard).

The Rust lane (tests/tests/pcscd_lane.rs) talks to pcscd through the `pcsc` crate; this script
uses pyscard instead, the library pySim-shell is built on, and replays what two widely used
clients send at start-up, byte for byte (docs/clients.md):

* pySim-shell: connect with "any protocol", then transmit with T=0 (as pySim does when the ATR
  offers T=0); probe the card kinds with a reset between probes (SGP.32 GetCerts `BF56`, which
  an SGP.22 card must refuse with an error status; SGP.22 GetEID `80E2910006BF3E035C015A00`;
  SGP.02 ECASD; UICC MF); then SELECT 3F00, SELECT 2F00, every EF.DIR record, SELECT of every
  listed application and EF.ICCID.
* lpac (an SGP.22 LPA): connect T=0 only and exclusive, TERMINAL CAPABILITIES, MANAGE CHANNEL
  open answered exactly `<ch> 90 00`, SELECT ISD-R with P2=00 and no Le, ES10 requests as STORE
  DATA segments of at most 120 bytes (P1 11, last 91; P2 the block number), GET RESPONSE with
  class `8<ch>`; the RetrieveNotificationsList encoding trap `BF2B 80 …`; and a complete profile
  download from `simlab network serve` over ES9+ (HTTPS, lpac's headers), the bound profile
  package split into ES10 commands the way lpac splits it, then enable, disable, delete.

It starts `simlab card serve` (UICC, then eUICC) on one vpcd slot and holds that slot's lock
(a listener on 127.0.0.1:35960-N, as the Rust lane does) while it runs.

    python3 scripts/interop/pyscard_clients.py [--simlab PATH] [--vpcd HOST:PORT] [--reader NAME]

Needs pcscd with vsmartcard's vpcd running (scripts/pcscd.sh start) and pyscard
(`pip install pyscard`; building it needs swig and libpcsclite-dev). Prints one line per
check and exits 1 when any failed.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import CardConnectionException
from smartcard.scard import (
    SCARD_LEAVE_CARD,
    SCARD_RESET_CARD,
    SCARD_SCOPE_USER,
    SCARD_SHARE_EXCLUSIVE,
    SCARD_SHARE_SHARED,
    SCARD_STATE_EMPTY,
    SCARD_STATE_UNAWARE,
    SCardEstablishContext,
    SCardGetStatusChange,
    SCardReleaseContext,
)
from smartcard.System import readers as pcsc_readers

REPO = Path(__file__).resolve().parents[2]
VPCD_BASE_PORT = 35963  # vpcd's slot N listens on 35963 + N
SLOT_LOCK_BASE_PORT = 35960  # the lanes' lock of slot N: a listener on 35960 - N
ISD_R_AID = "A0000005591010FFFFFFFF8900000100"
ECASD_AID = "A0000005591010FFFFFFFF8900000200"

FAILURES = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        FAILURES.append(name)
    return ok


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


def hx(data):
    return bytes(data).hex().upper()


# ---------------------------------------------------------------------------------------
# BER-TLV (ISO/IEC 8825-1), just what the ES10 requests and answers need


def tlv_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag, value):
    return bytes.fromhex(tag) + tlv_len(len(value)) + value


def tlv_read(data, pos=0):
    """(tag bytes, value, header length, end) of the TLV at `pos`."""
    start = pos
    pos += 1
    if data[start] & 0x1F == 0x1F:
        while data[pos] & 0x80:
            pos += 1
        pos += 1
    tag = data[start:pos]
    first = data[pos]
    pos += 1
    if first & 0x80:
        count = first & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        length = first
    return tag, data[pos : pos + length], pos - start, pos + length


def tlv_children(data):
    pos, out = 0, []
    while pos < len(data) and data[pos] not in (0x00, 0xFF):  # 'FF'/'00': record padding
        tag, value, header, end = tlv_read(data, pos)
        out.append((hx(tag), value, data[pos:end], header))
        pos = end
    return out


def tlv_find(data, tag):
    for t, value, _, _ in tlv_children(data):
        if t == tag:
            return value
    return None


# ---------------------------------------------------------------------------------------
# The card server and the slot


class Slot:
    def __init__(self, vpcd, reader):
        self.vpcd = vpcd
        port = int(vpcd.rsplit(":", 1)[1])
        self.number = port - VPCD_BASE_PORT
        if not 0 <= self.number < 100:
            sys.exit(f"--vpcd {vpcd}: vpcd's slots listen on {VPCD_BASE_PORT} + N")
        self.reader = reader or f"Virtual PCD 00 {self.number:02d}"
        self.lock = None

    def acquire(self, wait=120):
        address = ("127.0.0.1", SLOT_LOCK_BASE_PORT - self.number)
        deadline = time.monotonic() + wait
        said = False
        while True:
            s = socket.socket()
            try:
                s.bind(address)
                s.listen(1)
                self.lock = s
                return
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    sys.exit(f"the vpcd slot {self.vpcd} stays locked ({address} in use)")
                if not said:
                    print(f"waiting for the vpcd slot {self.vpcd} (lock {address} in use)")
                    said = True
                time.sleep(0.5)


def reader_state(name):
    """The pyscard reader `name`, or None."""
    for r in pcsc_readers():
        if str(r) == name:
            return r
    return None


def card_present(name):
    r = reader_state(name)
    if r is None:
        return False
    c = r.createConnection()
    try:
        c.connect(mode=SCARD_SHARE_SHARED)
        c.disconnect()
        return True
    except Exception:
        return False


def wait_until_empty(name, wait=10):
    """Waits until pcscd's own reader state says EMPTY. A failing connect is not enough: it
    fails as soon as the card is gone, but pcscd notices the removal only at its next poll of
    vpcd (every 400 ms); a new card that connects before then is never powered on (pcscd saw
    no change) and the reader shows "card removed" for as long as that card stays."""
    _, context = SCardEstablishContext(SCARD_SCOPE_USER)
    try:
        states = [(name, SCARD_STATE_UNAWARE)]
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _, states = SCardGetStatusChange(context, 0, states)
            if states and states[0][1] & SCARD_STATE_EMPTY:
                return
            states = [(name, states[0][1] if states else SCARD_STATE_UNAWARE)]
            time.sleep(0.1)
        sys.exit(f"pcscd still shows a card in {name} after {wait} s")
    finally:
        SCardReleaseContext(context)


class CardServer:
    """`simlab card serve` of one built-in card on the slot, stopped on exit."""

    def __init__(self, simlab, slot, card, label, state_dir):
        self.slot = slot
        self.log = open(state_dir / f"{label}-serve.log", "w+")
        self.proc = subprocess.Popen(
            [simlab, "card", "serve", "--card", card, "--state", str(state_dir / label), "--vpcd", slot.vpcd],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while not card_present(slot.reader):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                self.log.seek(0)
                sys.exit(f"`simlab card serve --card {card}` did not show up in {slot.reader}:\n{self.log.read()}")
            time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        wait_until_empty(self.slot.reader)
        self.log.close()


# ---------------------------------------------------------------------------------------
# pySim-shell's start-up


class PySimLink:
    """What pySim's PC/SC link does: connect with any protocol, transmit with T=0 when the ATR
    offers it; 61xx fetched with GET RESPONSE in the command's class, 6Cxx re-sent with Le."""

    def __init__(self, reader):
        self.conn = reader_state(reader).createConnection()
        self.conn.connect()  # any protocol
        self.protocol = CardConnection.T0_protocol

    def reset(self):
        self.conn.reconnect(disposition=SCARD_RESET_CARD)

    def raw(self, apdu):
        data, sw1, sw2 = self.conn.transmit(list(apdu), self.protocol)
        return bytes(data), sw1 << 8 | sw2

    def send(self, apdu_hex):
        apdu = h(apdu_hex)
        data, sw = self.raw(apdu)
        if sw >> 8 == 0x6C:
            data, sw = self.raw(apdu[:4] + bytes([sw & 0xFF]))  # case 2: the right Le
        while sw >> 8 == 0x61:
            more, sw = self.raw(bytes([apdu[0], 0xC0, 0, 0, sw & 0xFF]))
            data += more
        return data, sw

    def close(self):
        self.conn.disconnect()


def fcp_records(fcp):
    """(record length, number of records) of a linear fixed EF's FCP (TS 102 221 §11.1.1.4.3)."""
    inner = tlv_find(fcp, "62") or b""
    descriptor = tlv_find(inner, "82") or b""
    if len(descriptor) >= 5:
        return int.from_bytes(descriptor[2:4], "big"), descriptor[4]
    return None, None


def pysim_startup(reader, card, expect_iccid, expect_eid):
    link = PySimLink(reader)
    active = link.conn.getProtocol()
    check(f"[pySim {card}] connect with any protocol: pcscd settles on T=0",
          active == CardConnection.T0_protocol, f"protocol {active}")

    # Card-kind probes, a reset after each (pySim's card detection).
    # pySim selects applications with P2 '04' (return FCP) and Le '00'.
    link.reset()
    data, sw = link.send(f"00A4040410{ISD_R_AID}00")
    if card == "euicc":
        check(f"[pySim {card}] SGP.32 probe: SELECT ISD-R", sw == 0x9000, f"SW {sw:04X}")
        data, sw = link.send("80E2910003BF5600")
        check(f"[pySim {card}] SGP.32 probe: GetCerts BF56 answers an error status",
              sw not in (0x9000,) and sw >> 8 not in (0x61, 0x90), f"SW {sw:04X} data {hx(data)}")
        data, sw = link.send("80E2910003BF2000")
        check(f"[pySim {card}] the ISD-R still answers after BF56", sw == 0x9000 and data[:2] == h("BF20"),
              f"SW {sw:04X}")
    else:
        check(f"[pySim {card}] SGP.32 probe: SELECT ISD-R on a UICC answers 6A82", sw == 0x6A82, f"SW {sw:04X}")
    link.reset()
    data, sw = link.send(f"00A4040410{ISD_R_AID}00")
    if card == "euicc":
        data, sw = link.send("80E2910006BF3E035C015A00")
        eid = tlv_find(tlv_find(data, "BF3E") or b"", "5A") if sw == 0x9000 else None
        check(f"[pySim {card}] SGP.22 probe: GetEID", sw == 0x9000 and eid is not None and hx(eid) == expect_eid,
              f"SW {sw:04X} EID {hx(eid) if eid else None}")
    else:
        data, sw = link.send("80E2910006BF3E035C015A00")
        check(f"[pySim {card}] SGP.22 probe: GetEID on a UICC is refused", sw != 0x9000, f"SW {sw:04X}")
    link.reset()
    data, sw = link.send(f"00A4040410{ECASD_AID}00")
    check(f"[pySim {card}] SGP.02 probe: SELECT ECASD",
          sw == 0x9000 if card == "euicc" else sw == 0x6A82, f"SW {sw:04X}")
    link.reset()

    # File system.
    data, sw = link.send("00A40004023F00")
    check(f"[pySim {card}] SELECT 3F00 (FCP by GET RESPONSE)", sw == 0x9000 and data[:1] == b"\x62", f"SW {sw:04X}")
    fcp, sw = link.send("00A40004022F00")
    apps = []
    check(f"[pySim {card}] SELECT 2F00 (EF.DIR)", sw == 0x9000, f"SW {sw:04X}")
    length, count = fcp_records(fcp)
    check(f"[pySim {card}] EF.DIR is linear fixed", bool(length and count), f"FCP {hx(fcp)}")
    for n in range(1, (count or 0) + 1):
        record, sw = link.send(f"00B2{n:02X}04{length:02X}")
        check(f"[pySim {card}] READ RECORD {n} of EF.DIR", sw == 0x9000 and len(record) == length, f"SW {sw:04X}")
        template = tlv_find(record, "61")
        if template and tlv_find(template, "4F"):
            apps.append(hx(tlv_find(template, "4F")))
    if expect_iccid:
        check(f"[pySim {card}] EF.DIR lists an application", bool(apps), ", ".join(apps))
    else:
        check(f"[pySim {card}] EF.DIR of an eUICC without an enabled profile lists none", not apps,
              ", ".join(apps))
    for aid in apps:
        data, sw = link.send(f"00A40404{len(aid) // 2:02X}{aid}00")
        check(f"[pySim {card}] SELECT application {aid}", sw == 0x9000 and data[:1] == b"\x62", f"SW {sw:04X}")
    data, sw = link.send("00A40004023F00")
    data, sw = link.send("00A40004022FE2")
    if expect_iccid is None:
        # EF.ICCID belongs to a profile: an eUICC with none enabled has no such file.
        check(f"[pySim {card}] SELECT 2FE2 without an enabled profile answers 6A82", sw == 0x6A82, f"SW {sw:04X}")
    else:
        check(f"[pySim {card}] SELECT 2FE2 (EF.ICCID)", sw == 0x9000, f"SW {sw:04X}")
        data, sw = link.send("00B000000A")
        digits = iccid_digits(data)
        check(f"[pySim {card}] READ BINARY EF.ICCID", sw == 0x9000 and digits == expect_iccid, f"ICCID {digits}")
    link.close()


# ---------------------------------------------------------------------------------------
# lpac's sequence


class LpacLink:
    """T=0 only, exclusive; one logical channel to the ISD-R; ES10 over STORE DATA."""

    SEGMENT = 120

    def __init__(self, reader):
        self.conn = reader_state(reader).createConnection()
        self.conn.connect(CardConnection.T0_protocol, mode=SCARD_SHARE_EXCLUSIVE)
        self.ch = None
        self.exchanges = 0

    def raw(self, apdu):
        self.exchanges += 1
        data, sw1, sw2 = self.conn.transmit(list(apdu), CardConnection.T0_protocol)
        return bytes(data), sw1 << 8 | sw2

    def fetch(self, data, sw, cla):
        while sw >> 8 == 0x61:
            more, sw = self.raw(bytes([cla, 0xC0, 0x00, 0x00, sw & 0xFF]))
            data += more
        return data, sw

    def open(self):
        self.raw(h("80AA00000AA9088100820101830107"))  # TERMINAL CAPABILITIES, answer ignored
        data, sw = self.raw(h("0070000001"))
        check("[lpac] MANAGE CHANNEL open answers exactly <ch> 90 00",
              sw == 0x9000 and len(data) == 1 and 1 <= data[0] <= 3, f"{hx(data)} {sw:04X}")
        self.ch = data[0] if data else 1
        data, sw = self.raw(bytes([self.ch, 0xA4, 0x04, 0x00, 0x10]) + h(ISD_R_AID))
        data, sw = self.fetch(data, sw, self.ch)
        check("[lpac] SELECT ISD-R with P2=00 and no Le", sw == 0x9000, f"SW {sw:04X}")

    def es10(self, request, name=None):
        """One ES10 function: STORE DATA segments (P1 11, last 91), then 61xx fetched with class
        8<ch>. Returns (answer, SW); checks that the intermediate blocks answer 9000 alone."""
        cla = 0x80 | self.ch
        segments = [request[i : i + self.SEGMENT] for i in range(0, len(request), self.SEGMENT)] or [b""]
        for block, segment in enumerate(segments):
            last = block == len(segments) - 1
            apdu = bytes([cla, 0xE2, 0x91 if last else 0x11, block, len(segment)]) + segment
            data, sw = self.raw(apdu)
            if not last and (data or sw != 0x9000):
                check(f"[lpac] {name or hx(request[:3])}: block {block} answers 9000 alone", False,
                      f"{hx(data)} {sw:04X}")
                return data, sw
        return self.fetch(data, sw, cla)

    def close(self):
        if self.ch:
            data, sw = self.raw(bytes([0x00, 0x70, 0x80, self.ch]))
            check("[lpac] MANAGE CHANNEL close", sw == 0x9000, f"SW {sw:04X}")
        self.conn.disconnect()


def lpac_basics(reader, expect_eid):
    # Another program (pcsc_scan, opensc-tool) connected first with any protocol and left the
    # card powered: lpac's T=0-only connect must still work.
    other = reader_state(reader).createConnection()
    other.connect(disposition=SCARD_LEAVE_CARD)
    other.disconnect()
    lpa = LpacLink(reader)
    check("[lpac] connect T=0 only, exclusive", lpa.conn.getProtocol() == CardConnection.T0_protocol)
    lpa.open()
    for request, tag in [("BF2000", "BF20"), ("BF2E00", "BF2E"), ("BF2D00", "BF2D"), ("BF2800", "BF28"),
                         ("BF2200", "BF22"), ("BF3E035C015A", "BF3E")]:
        data, sw = lpa.es10(h(request))
        check(f"[lpac] ES10 {request}", sw == 0x9000 and data[:2] == h(tag), f"SW {sw:04X} {hx(data[:8])}…")
        if tag == "BF3E":
            check("[lpac] EID", hx(tlv_find(tlv_find(data, "BF3E"), "5A") or b"") == expect_eid)
    # RetrieveNotificationsList: the spec form, then the trap form seen in the field.
    data, sw = lpa.es10(h("BF2B05A003800101"))
    check("[lpac] RetrieveNotificationsList BF2B A0 {80 seq}", sw == 0x9000 and data[:2] == h("BF2B"),
          f"{hx(data)} {sw:04X}")
    data, sw = lpa.es10(h("BF2B03800101"))
    check("[lpac] RetrieveNotificationsList in the trap form BF2B 80 … is refused, the card answers",
          not (sw == 0x9000 and tlv_find(tlv_find(data, "BF2B") or b"", "A0") is not None),
          f"{hx(data)} {sw:04X}")
    # A request longer than one segment: AuthenticateServer with garbage must be refused by the
    # card after the last block, each earlier block answered 9000 alone.
    junk = tlv("BF38", tlv("30", bytes(range(200))) + tlv("5F37", bytes(64)))
    data, sw = lpa.es10(junk, "AuthenticateServer (junk, 3 blocks)")
    check("[lpac] AuthenticateServer (3 segments of ≤120 bytes) of garbage gets an error answer",
          sw != 0x9000 or (data[:2] == h("BF38") and tlv_find(tlv_find(data, "BF38"), "A1") is not None),
          f"{hx(data)} {sw:04X}")
    data, sw = lpa.es10(h("BF2000"))
    check("[lpac] the ISD-R still answers", sw == 0x9000 and data[:2] == h("BF20"), f"SW {sw:04X}")
    lpa.close()


class Es9Client:
    """ES9+ as lpac calls it: HTTPS POST, its headers, no `header` object, base64 fields."""

    def __init__(self, address, ca_der):
        self.base = f"https://{address}/gsma/rsp2/es9plus/"
        self.ctx = ssl.create_default_context(cadata=ca_der)

    def call(self, function, body):
        req = urllib.request.Request(
            self.base + function,
            data=json.dumps(body).encode(),
            headers={
                "User-Agent": "gsma-rsp-lpad",
                "X-Admin-Protocol": "gsma/rsp/v2.2.2",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as answer:
            text = answer.read()
            return answer.status, json.loads(text) if text else {}


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text)


def bpp_commands(bpp):
    """The bound profile package cut into ES10 commands the way lpac cuts it (SGP.22 §2.5.5):
    BF36 header + BF23; A0 whole; A1 header, then each 88; A2 whole; A3 header, then each 86."""
    tag, body, header, _ = tlv_read(bpp)
    parts = tlv_children(body)
    commands = [bpp[:header] + parts[0][2]]
    for t, value, raw, head in parts[1:]:
        if t in ("A1", "A3"):
            commands.append(raw[:head])
            commands.extend(c[2] for c in tlv_children(value))
        else:
            commands.append(raw)
    return commands


def lpac_download(reader, simlab, tmp, expect_eid):
    """A download from `simlab network serve` with lpac's ES10 and ES9+ sequence, then enable,
    disable and delete."""
    log = open(tmp / "network.log", "w+")
    net = subprocess.Popen(
        [simlab, "network", "serve", "--listen", "127.0.0.1:0", "--es2-listen", "127.0.0.1:0",
         "--operator-listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )
    try:
        es9 = es2 = None
        deadline = time.monotonic() + 30
        while (es9 is None or es2 is None) and time.monotonic() < deadline:
            line = net.stdout.readline()
            if not line:
                break
            if line.startswith("SM-DP+ listening on https://"):
                es9 = line.split("https://", 1)[1].strip()
            elif line.strip().startswith("ES2+: https://"):
                es2 = line.split("https://", 1)[1].split("/", 1)[0]
        if not check("[lpac download] simlab network serve prints its ES9+ and ES2+ addresses", es9 and es2):
            return
        subprocess.run([simlab, "pki", "export", "--out", str(tmp / "pki")], check=True, capture_output=True)
        ca = (tmp / "pki/CertificateIssuer/CERT_CI_ECDSA_NIST.der").read_bytes()
        order = subprocess.run([simlab, "--json", "network", "order", "--server", es2, "--template",
                                "TS48V2-SAIP2-3-BERTLV-UNIQUE"], capture_output=True, text=True)
        result = json.loads(order.stdout).get("result") or {}
        code = result.get("activationCode", "")
        if not check("[lpac download] network order gives an activation code", code.startswith("LPA:1$"),
                     code or order.stdout + order.stderr):
            return
        _, address, matching_id = code.split("$")[:3]
        es9p = Es9Client(es9, ca)

        lpa = LpacLink(reader)
        lpa.open()
        info1, sw = lpa.es10(h("BF2000"))
        challenge, sw = lpa.es10(h("BF2E00"))
        challenge = tlv_find(tlv_find(challenge, "BF2E"), "80")
        status, r = es9p.call("initiateAuthentication", {
            "euiccChallenge": b64(challenge), "euiccInfo1": b64(info1), "smdpAddress": address})
        check("[lpac download] ES9+ initiateAuthentication", status == 200 and "transactionId" in r,
              json.dumps(r)[:200])
        transaction = r["transactionId"]
        device_info = tlv("80", h("35290611")) + h("A100")
        ctx1 = tlv("A0", tlv("80", matching_id.encode()) + tlv("A1", device_info))
        auth = tlv("BF38", unb64(r["serverSigned1"]) + unb64(r["serverSignature1"])
                   + unb64(r["euiccCiPKIdToBeUsed"]) + unb64(r["serverCertificate"]) + ctx1)
        answer, sw = lpa.es10(auth, "AuthenticateServer")
        check("[lpac download] ES10b AuthenticateServer in 120-byte segments",
              sw == 0x9000 and tlv_find(tlv_find(answer, "BF38") or b"", "A0") is not None, f"SW {sw:04X} {hx(answer[:8])}")
        status, r = es9p.call("authenticateClient", {"transactionId": transaction,
                                                     "authenticateServerResponse": b64(answer)})
        check("[lpac download] ES9+ authenticateClient", status == 200 and "smdpSigned2" in r, json.dumps(r)[:200])
        prepare = tlv("BF21", unb64(r["smdpSigned2"]) + unb64(r["smdpSignature2"]) + unb64(r["smdpCertificate"]))
        answer, sw = lpa.es10(prepare, "PrepareDownload")
        check("[lpac download] ES10b PrepareDownload",
              sw == 0x9000 and tlv_find(tlv_find(answer, "BF21") or b"", "A0") is not None, f"SW {sw:04X}")
        status, r = es9p.call("getBoundProfilePackage", {"transactionId": transaction,
                                                         "prepareDownloadResponse": b64(answer)})
        check("[lpac download] ES9+ getBoundProfilePackage", status == 200 and "boundProfilePackage" in r,
              json.dumps(r)[:200])
        commands = bpp_commands(unb64(r["boundProfilePackage"]))
        result = None
        for n, command in enumerate(commands):
            answer, sw = lpa.es10(command, f"LoadBoundProfilePackage part {n}")
            if sw != 0x9000 or answer:
                result = answer
                break
        check(f"[lpac download] the package in {len(commands)} ES10 commands, continued with empty 9000s",
              result is not None and n == len(commands) - 1 and result[:2] == h("BF37"),
              f"stopped at {n} of {len(commands)} with {hx(result or b'')[:40]} {sw:04X}")
        installed = tlv_find(tlv_find(result or b"", "BF37") or b"", "BF27") or b""
        final = tlv_find(installed, "A2") or b""
        check("[lpac download] ProfileInstallationResult says success", tlv_find(final, "A0") is not None,
              hx(final))
        status, r = es9p.call("handleNotification", {"pendingNotification": b64(result)})
        check("[lpac download] ES9+ handleNotification", status == 204, f"HTTP {status}")
        seq = tlv_find(tlv_find(installed, "BF2F") or b"", "80")
        answer, sw = lpa.es10(tlv("BF30", tlv("80", seq or b"\x00")), "RemoveNotificationFromList")
        check("[lpac download] RemoveNotificationFromList", answer == h("BF3003800100"), hx(answer))
        profiles, sw = lpa.es10(h("BF2D00"))
        iccid = tlv_find(tlv_find(tlv_find(tlv_find(profiles, "BF2D") or b"", "A0") or b"", "E3") or b"", "5A")
        check("[lpac download] GetProfilesInfo lists the profile", iccid is not None, hx(profiles))
        answer, sw = lpa.es10(tlv("BF31", tlv("A0", tlv("5A", iccid or b"")) + h("8101FF")), "EnableProfile")
        check("[lpac download] ES10c EnableProfile", answer == h("BF3103800100"), f"{hx(answer)} {sw:04X}")
        lpa.close()
        return iccid
    finally:
        net.terminate()
        net.wait(10)
        log.close()


def lpac_remove(reader, iccid):
    """Disable and delete the profile `iccid` (BCD), as `lpac profile disable/delete` do."""
    lpa = LpacLink(reader)
    lpa.open()
    answer, sw = lpa.es10(tlv("BF32", tlv("A0", tlv("5A", iccid)) + h("8101FF")), "DisableProfile")
    check("[lpac] ES10c DisableProfile", answer == h("BF3203800100"), f"{hx(answer)} {sw:04X}")
    answer, sw = lpa.es10(tlv("BF33", tlv("5A", iccid)), "DeleteProfile")
    check("[lpac] ES10c DeleteProfile", answer == h("BF3303800100"), f"{hx(answer)} {sw:04X}")
    answer, sw = lpa.es10(h("BF2D00"))
    check("[lpac] GetProfilesInfo is empty again", answer == h("BF2D02A000"), f"{hx(answer)} {sw:04X}")
    lpa.close()


def iccid_digits(bcd):
    """EF.ICCID / tag 5A: swapped BCD, 'F' padded (TS 102 221 §13.2)."""
    return "".join(f"{b & 0xF:X}{b >> 4:X}" for b in bcd).rstrip("F")


# ---------------------------------------------------------------------------------------


def phase(name, function, *args):
    """Runs one client's sequence; a PC/SC error (e.g. a protocol mismatch) fails it."""
    try:
        return function(*args)
    except (CardConnectionException, OSError, KeyError, IndexError, ValueError) as e:
        check(f"[{name}] runs to the end", False, f"{type(e).__name__}: {e}")
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simlab", default=os.environ.get("SIMLAB") or shutil.which("simlab")
                        or str(REPO / "target/debug/simlab"), help="the simlab binary")
    parser.add_argument("--vpcd", default=os.environ.get("SIMLAB_VPCD") or "127.0.0.1:35963",
                        help="the vpcd slot (host:port); default SIMLAB_VPCD or 127.0.0.1:35963")
    parser.add_argument("--reader", default=os.environ.get("SIMLAB_VPCD_READER"),
                        help='its PC/SC reader; default "Virtual PCD 00 NN" of the slot')
    parser.add_argument("--no-download", action="store_true", help="leave out the ES9+ download")
    parser.add_argument("--uicc", default="uicc", help="the UICC: a built-in card name or a definition file")
    parser.add_argument("--euicc", default="euicc", help="the eUICC: a built-in card name or a definition file")
    args = parser.parse_args()

    def definition(card):
        path = Path(card) if Path(card).is_file() else REPO / "vectors/cards" / f"{card}.toml"
        return tomllib.loads(path.read_text())

    uicc, euicc = definition(args.uicc), definition(args.euicc)

    started = time.monotonic()
    slot = Slot(args.vpcd, args.reader)
    slot.acquire()
    if card_present(slot.reader):
        sys.exit(f"{slot.reader} already holds a card: another process serves this slot")
    wait_until_empty(slot.reader)
    with tempfile.TemporaryDirectory(prefix="simlab-interop-") as tmp:
        tmp = Path(tmp)
        server = CardServer(args.simlab, slot, args.uicc, "uicc", tmp)
        try:
            phase("pySim uicc", pysim_startup, slot.reader, "uicc", uicc["card"]["iccid"], None)
        finally:
            server.stop()
        eid = euicc["euicc"]["eid"]
        server = CardServer(args.simlab, slot, args.euicc, "euicc", tmp)
        try:
            phase("pySim euicc", pysim_startup, slot.reader, "euicc", None, eid)
            phase("lpac", lpac_basics, slot.reader, eid)
            if not args.no_download:
                iccid = phase("lpac download", lpac_download, slot.reader, args.simlab, tmp, eid)
                if iccid:
                    # The enabled profile's file system after pySim's reset: its USIM and ICCID.
                    phase("pySim euicc", pysim_startup, slot.reader, "euicc", iccid_digits(iccid), eid)
                    phase("lpac", lpac_remove, slot.reader, iccid)
        finally:
            server.stop()
    took = time.monotonic() - started
    print(f"{'FAILED' if FAILURES else 'passed'}: {len(FAILURES)} failed checks ({took:.1f} s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
