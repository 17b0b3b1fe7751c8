//! The GSMA TS.48 test profiles (vectors/profiles, provenance in its README) read with
//! [`decode`] and rewritten with [`personalise`].

use std::path::PathBuf;

use proptest::prelude::*;
use rstest::rstest;

use super::*;

const IMSI: &str = "001010123456063";
const USIM_AID: &str = "a0000000871002ff49ff0589";
const ISIM_AID: &str = "a0000000871004ff49ff0589";
const K: &str = "000102030405060708090a0b0c0d0e0f";

fn load(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/profiles")
        .join(format!("{name}.der"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn pin(pkg: &ProfilePackage, key: u8) -> &PinCode {
    pkg.pins
        .iter()
        .find(|p| p.key_reference == key)
        .unwrap_or_else(|| panic!("no PIN {key:02X}"))
}

#[rstest]
#[case("TS48V1-A-UNIQUE", 1, "8949449999999990023")]
#[case("TS48V1-B-UNIQUE", 1, "8949449999999990031")]
#[case("TS48V2-SAIP2-1-BERTLV-UNIQUE", 1, "8949449999999990049")]
#[case("TS48V2-SAIP2-1-NOBERTLV-UNIQUE", 1, "8949449999999990007")]
#[case("TS48V2-SAIP2-3-BERTLV-UNIQUE", 3, "8949449999999990056")]
#[case("TS48V2-SAIP2-3-NOBERTLV-UNIQUE", 3, "8949449999999990015")]
#[case("TS48V3-SAIP2-1-BERTLV-UNIQUE", 1, "8949449999999990064")]
#[case("TS48V3-SAIP2-1-NOBERTLV-UNIQUE", 1, "8949449999999990072")]
#[case("TS48V3-SAIP2-3-BERTLV-UNIQUE", 3, "8949449999999990080")]
#[case("TS48V3-SAIP2-3-NOBERTLV-UNIQUE", 3, "8949449999999990098")]
#[case("TS48V4-SAIP2-1A-NOBERTLV-UNIQUE", 1, "8949449999999990106")]
#[case("TS48V4-SAIP2-1B-NOBERTLV-UNIQUE", 1, "8949449999999990114")]
#[case("TS48V4-SAIP2-3-BERTLV-UNIQUE", 3, "8949449999999990122")]
#[case("TS48V4-SAIP2-3-NOBERTLV-UNIQUE", 3, "8949449999999990130")]
#[case("TS48V5-SAIP2-1A-NOBERTLV-UNIQUE", 1, "8949449999999990148")]
#[case("TS48V5-SAIP2-1B-NOBERTLV-UNIQUE", 1, "8949449999999990155")]
#[case("TS48V5-SAIP2-3-BERTLV-SUCI-UNIQUE", 3, "8949449999999990163")]
#[case("TS48V5-SAIP2-3-NOBERTLV-UNIQUE", 3, "8949449999999990171")]
#[case("TS48v1_A", 1, "89000123456789012341")]
#[case("TS48v1_B", 1, "89000123456789012341")]
#[case("TS48v2_SAIP2.1_BERTLV", 1, "89000123456789012341")]
#[case("TS48v2_SAIP2.1_NoBERTLV", 1, "89000123456789012358")]
#[case("TS48v2_SAIP2.3_BERTLV", 3, "89000123456789012341")]
#[case("TS48v2_SAIP2.3_NoBERTLV", 3, "89000123456789012341")]
#[case("TS48v3_SAIP2.1_BERTLV", 1, "89000123456789012341")]
#[case("TS48v3_SAIP2.1_NoBERTLV", 1, "89000123456789012341")]
#[case("TS48v3_SAIP2.3_BERTLV", 3, "89000123456789012341")]
#[case("TS48v3_SAIP2.3_NoBERTLV", 3, "89000123456789012341")]
#[case("TS48v4_SAIP2.1A_NoBERTLV", 1, "89000123456789012341")]
#[case("TS48v4_SAIP2.1B_NoBERTLV", 1, "89000123456789012341")]
#[case("TS48v4_SAIP2.3_BERTLV", 3, "89000123456789012341")]
#[case("TS48v4_SAIP2.3_NoBERTLV", 3, "89000123456789012341")]
#[case("TS48v5_SAIP2.1A_NoBERTLV", 1, "89000123456789012341")]
#[case("TS48v5_SAIP2.1B_NoBERTLV", 1, "89000123456789012341")]
#[case("TS48v5_SAIP2.3_BERTLV_SUCI", 3, "89000123456789012341")]
#[case("TS48v5_SAIP2.3_NoBERTLV", 3, "89000123456789012341")]
fn decodes_ts48_profile_as_its_readme_says(
    #[case] name: &str,
    #[case] minor: u8,
    #[case] iccid: &str,
) {
    let der = load(name);
    let pkg = decode(&der).unwrap();

    // Header and the raw PEs, which must give the package back byte for byte.
    assert_eq!(
        (pkg.header.major_version, pkg.header.minor_version),
        (2, minor)
    );
    assert_eq!(pkg.header.iccid, iccid);
    assert_eq!(
        pkg.elements
            .iter()
            .flat_map(|e| e.raw.clone())
            .collect::<Vec<_>>(),
        der
    );
    assert_eq!(pkg.elements.first().map(|e| e.kind), Some(PeKind::Header));
    assert_eq!(pkg.elements.last().map(|e| e.kind), Some(PeKind::End));
    assert!(pkg
        .header
        .mandatory_services
        .iter()
        .any(|s| s.name() == "usim-test-algorithm"));

    // MF: EF.ICCID holds the nibble-swapped ICCID of the header.
    let ef_iccid = pkg.file(&[0x3F00, 0x2FE2]).unwrap();
    assert_eq!(ef_iccid.name, Some("EF.ICCID"));
    assert_eq!(ef_iccid.kind, FileKind::Transparent { size: 10 });
    assert_eq!(ef_iccid.content, pkg.header.ef_iccid.to_vec());
    assert_eq!(decode_iccid_ef(&ef_iccid.content).unwrap(), iccid);
    for fid in [0x2F00, 0x2F05, 0x2F06] {
        assert!(pkg.file(&[0x3F00, fid]).is_some(), "MF/{fid:04X} missing");
    }

    // NAAs and their files.
    let aids: Vec<_> = pkg.adfs().map(|f| (f.name, f.kind.clone())).collect();
    let usim_aid = hex::decode(USIM_AID).unwrap();
    let isim_aid = hex::decode(ISIM_AID).unwrap();
    assert!(
        aids.contains(&(
            Some("ADF.USIM"),
            FileKind::Adf {
                aid: usim_aid.clone()
            }
        )),
        "{aids:?}"
    );
    assert!(
        aids.contains(&(
            Some("ADF.ISIM"),
            FileKind::Adf {
                aid: isim_aid.clone()
            }
        )),
        "{aids:?}"
    );
    assert_eq!(pkg.imsi().as_deref(), Some(IMSI));
    let imsi_ef = pkg.file_named(Some(&usim_aid), "EF.IMSI").unwrap();
    assert_eq!(
        (imsi_ef.fid(), imsi_ef.sfi, imsi_ef.kind.clone()),
        (0x6F07, Some(0x07), FileKind::Transparent { size: 9 })
    );
    for name in [
        "EF.AD",
        "EF.UST",
        "EF.EST",
        "EF.SPN",
        "EF.ACC",
        "EF.LOCI",
        "EF.Keys",
        "EF.KeysPS",
        "EF.ARR",
    ] {
        assert!(
            pkg.file_named(Some(&usim_aid), name).is_some(),
            "{name} missing in ADF.USIM"
        );
    }
    let msisdn = pkg.file_named(Some(&usim_aid), "EF.MSISDN").unwrap();
    assert!(matches!(msisdn.kind, FileKind::LinearFixed { .. }));
    assert!(msisdn.content.iter().all(|b| *b == 0xFF));
    assert_eq!(pkg.msisdn(), None);

    // AKA: the XOR test algorithm with K 00..0F, once for the USIM, once for the ISIM.
    assert_eq!(pkg.aka.len(), 2);
    for a in &pkg.aka {
        assert_eq!(a.algorithm, Some(AkaAlgorithm::UsimTestAlgorithm));
        assert_eq!(a.algorithm.map(AkaAlgorithm::id), Some(3));
        assert_eq!(a.k.as_deref().map(hex::encode).as_deref(), Some(K));
        assert_eq!(a.opc.as_deref(), Some(&[0u8; 16][..]));
    }
    let usim_dir = pkg
        .adfs()
        .find(|f| f.name == Some("ADF.USIM"))
        .unwrap()
        .path
        .clone();
    let isim_dir = pkg
        .adfs()
        .find(|f| f.name == Some("ADF.ISIM"))
        .unwrap()
        .path
        .clone();
    assert_eq!(pkg.aka[0].context, usim_dir);
    assert_eq!(pkg.aka[1].context, isim_dir);

    // PINs and PUKs.
    assert_eq!(pin(&pkg, 0x01).value_text(), "0000");
    assert_eq!(pin(&pkg, 0x01).value, *b"0000\xFF\xFF\xFF\xFF");
    assert_eq!(pin(&pkg, 0x01).unblocking_reference, Some(0x01));
    assert_eq!(pin(&pkg, 0x81).value_text(), "9999");
    assert_eq!(pin(&pkg, 0x0A).value_text(), "55555555");
    assert_eq!(pin(&pkg, 0x0B).value_text(), "66666666");
    assert!(pin(&pkg, 0x0A).enabled());
    assert_eq!(pin(&pkg, 0x01).context, vec![0x3F00]);
    let puk = |k: u8| {
        pkg.puks
            .iter()
            .find(|p| p.key_reference == k)
            .map(|p| p.value_text())
    };
    assert_eq!(puk(0x01).as_deref(), Some("11111111"));
    assert_eq!(puk(0x81).as_deref(), Some("22222222"));

    // Kept raw for later: the ISD-P security domain and the RFM instances.
    assert_eq!(pkg.elements_of(PeKind::SecurityDomain).count(), 1);
    assert!(pkg.elements_of(PeKind::Rfm).count() >= 1);
    // Only the CSIM's EFs (no transcribed template) may lack a size.
    assert!(
        pkg.warnings
            .iter()
            .all(|w| w.starts_with("7FC0/") && w.contains("no efFileSize")),
        "{:#?}",
        pkg.warnings
    );
}

#[rstest]
#[case::with_everything(Some("262011234567890"), Some("+4915112345678"), true)]
#[case::iccid_only(None, None, false)]
fn personalise_round_trips(
    #[case] imsi: Option<&str>,
    #[case] msisdn: Option<&str>,
    #[case] keys: bool,
) {
    let der = load("TS48V5-SAIP2-3-BERTLV-SUCI-UNIQUE");
    let before = decode(&der).unwrap();
    let k = [0x11u8; 16];
    let opc = [0x22u8; 16];
    let p = Personalisation {
        iccid: "8944123456789012347".into(),
        imsi: imsi.map(str::to_string),
        k: keys.then_some(k),
        opc: keys.then_some(opc),
        msisdn: msisdn.map(str::to_string),
    };
    let out = personalise(&der, &p).unwrap();
    let after = decode(&out).unwrap();

    assert_eq!(after.header.iccid, "8944123456789012347");
    let ef_iccid = after.file(&[0x3F00, 0x2FE2]).unwrap();
    assert_eq!(hex::encode_upper(&ef_iccid.content), "984421436587092143F7");
    assert_eq!(after.imsi().as_deref(), Some(imsi.unwrap_or(IMSI)));
    assert_eq!(after.msisdn().as_deref(), msisdn);
    let old_k = before.aka[0].k.clone().unwrap();
    for a in &after.aka {
        assert_eq!(a.k.as_deref(), Some(if keys { &k[..] } else { &old_k[..] }));
        assert_eq!(
            a.opc.as_deref(),
            Some(if keys { &opc[..] } else { &[0u8; 16][..] })
        );
    }
    // Nothing else moved: same PEs, same files (other than the rewritten ones), same PINs.
    assert_eq!(after.elements.len(), before.elements.len());
    assert_eq!(after.pins, before.pins);
    assert_eq!(after.puks, before.puks);
    assert_eq!(after.files.len(), before.files.len());
    let changed: Vec<_> = before
        .files
        .iter()
        .zip(&after.files)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| fs::path_text(&b.path))
        .collect();
    let mut expected = vec!["3F00/2FE2"];
    if imsi.is_some() {
        expected.push("7FD0/6F07");
    }
    if msisdn.is_some() {
        // DF.TELECOM/EF.MSISDN (created by genericFileManagement) is linked to the USIM's.
        expected.extend(["7FD0/6F40", "3F00/7F10/6F40"]);
    }
    assert_eq!(changed, expected);
    let unchanged = |k: PeKind| {
        before
            .elements_of(k)
            .map(|e| &e.raw)
            .eq(after.elements_of(k).map(|e| &e.raw))
    };
    assert!(
        unchanged(PeKind::SecurityDomain)
            && unchanged(PeKind::Telecom)
            && unchanged(PeKind::PinCodes)
    );
}

#[test]
fn personalise_rejects_a_malformed_iccid_and_changes_nothing() {
    let der = load("TS48v1_A");
    let p = Personalisation {
        iccid: "89ABC".into(),
        ..Default::default()
    };
    assert!(matches!(
        personalise(&der, &p),
        Err(SaipError::BadDigits { what: "ICCID", .. })
    ));
}

#[test]
fn summary_of_a_ts48_profile() {
    let pkg = decode(&load("TS48V5-SAIP2-3-BERTLV-SUCI-UNIQUE")).unwrap();
    insta::assert_snapshot!(pkg.summary());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_a_mutated_profile(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut der = load("TS48v2_SAIP2.3_BERTLV");
        for (at, byte) in edits {
            let i = at.index(der.len());
            der[i] = byte;
        }
        if truncate {
            der.truncate(cut.index(der.len()));
        }
        if let Ok(pkg) = decode(&der) {
            let _ = pkg.summary();
            let _ = personalise(&der, &Personalisation { iccid: "89".into(), imsi: Some(IMSI.into()), ..Default::default() });
        }
    }

    #[test]
    fn decode_never_panics_inside_a_valid_pe_sequence(
        pe in proptest::collection::vec(any::<u8>(), 0..300),
        tag in prop_oneof![0xA1u32..=0xAA, 0xB0u32..=0xBE, Just(0xBF1F), Just(0xBF20)],
    ) {
        // A real header first, then one PE of a known type with arbitrary content.
        let der = load("TS48v1_A");
        let header = crate::tlv::parse(&der).unwrap().0.raw.to_vec();
        let mut pkg = header;
        pkg.extend(crate::tlv::encode(tag, &pe));
        prop_assert!(decode(&pkg).is_ok());
    }
}

/// The package with the children of its first PE of `kind` passed through `edit`.
fn edit_pe(der: &[u8], kind: PeKind, edit: impl Fn(Vec<Vec<u8>>) -> Vec<Vec<u8>>) -> Vec<u8> {
    let mut done = false;
    let mut out = Vec::new();
    for pe in split_elements(der).unwrap() {
        if !done && PeKind::from_tag(pe.tag) == kind {
            let children: Vec<Vec<u8>> = pe.children().map(|c| c.unwrap().raw.to_vec()).collect();
            out.extend(crate::tlv::encode(pe.tag, &edit(children).concat()));
            done = true;
        } else {
            out.extend_from_slice(pe.raw);
        }
    }
    assert!(done, "no {kind:?} PE");
    out
}

/// The package with `pe` inserted before its End PE.
fn insert_before_end(der: &[u8], pe: &[u8]) -> Vec<u8> {
    let pes = split_elements(der).unwrap();
    let (end, rest) = pes.split_last().unwrap();
    assert_eq!(PeKind::from_tag(end.tag), PeKind::End);
    [
        rest.iter().flat_map(|p| p.raw.to_vec()).collect::<Vec<_>>(),
        pe.to_vec(),
        end.raw.to_vec(),
    ]
    .concat()
}

#[test]
fn creates_template_files_the_usim_pe_omits_unless_told_not_to() {
    let der = load("TS48v1_A");
    let edited = edit_pe(&der, PeKind::Usim, |children| {
        children
            .into_iter()
            // Drop ef-keys [5]; turn ef-keysPS [6] into doNotCreate.
            .filter(|c| c[0] != 0xA5)
            .map(|c| {
                if c[0] == 0xA6 {
                    vec![0xA6, 0x02, 0x80, 0x00]
                } else {
                    c
                }
            })
            .collect()
    });
    let pkg = decode(&edited).unwrap();
    let usim = hex::decode(USIM_AID).unwrap();
    let keys = pkg.file_named(Some(&usim), "EF.Keys").unwrap();
    assert!(keys.implicit);
    assert_eq!(
        (keys.sfi, keys.kind.clone()),
        (Some(0x08), FileKind::Transparent { size: 33 })
    );
    // Annex A default '07FF…FF': key set identifier 07 = no key available (TS 31.102 §4.2.4).
    assert_eq!(keys.content, [&[0x07][..], &[0xFF; 32][..]].concat());
    assert!(pkg.file_named(Some(&usim), "EF.KeysPS").is_none());
    assert!(
        pkg.warnings.iter().all(|w| w.starts_with("7FC0/")),
        "{:#?}",
        pkg.warnings
    );
}

#[test]
fn generic_file_management_creates_files_and_fills_existing_ones() {
    let der = load("TS48v1_A");
    let new_imsi = encode_imsi("999990000000001").unwrap();
    let h = |s: &str| hex::decode(s.replace(' ', "")).unwrap();
    let fm = [
        // filePath ADF.USIM/EF.IMSI (temporary FID 7FD0), then fillFileContent.
        h("80 04 7FD0 6F07"),
        crate::tlv::encode(0x81, &new_imsi),
        // filePath MF, createFCP transparent 2F50 of 4 bytes, offset 2, content AA BB CC.
        h("80 00"),
        h("62 0D 82 02 4121 83 02 2F50 80 01 04 88 00"),
        h("02 01 02"),
        h("81 03 AABBCC"),
    ]
    .concat();
    let cmds = crate::tlv::encode(0xA1, &crate::tlv::encode(0x30, &fm));
    let gfm = crate::tlv::encode(0xA1, &[h("A0 03 81 01 7F"), cmds].concat());
    let pkg = decode(&insert_before_end(&der, &gfm)).unwrap();

    assert_eq!(pkg.imsi().as_deref(), Some("999990000000001"));
    let f = pkg.file(&[0x3F00, 0x2F50]).unwrap();
    assert_eq!(
        (f.kind.clone(), f.sfi),
        (FileKind::Transparent { size: 4 }, None)
    );
    assert_eq!(f.content, h("FF FF AA BB"));
    assert!(
        pkg.warnings
            .iter()
            .any(|w| w.starts_with("3F00/2F50: fill content ends at byte 5")),
        "{:#?}",
        pkg.warnings
    );
}

#[test]
fn personalises_every_ts48_profile() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/profiles");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".der").map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(names.len(), 36);
    let p = Personalisation {
        iccid: "89000999999999999995".into(),
        imsi: Some("99999123456789".into()),
        k: Some([0xA5; 16]),
        opc: Some([0x5A; 16]),
        msisdn: Some("+1555123".into()),
    };
    for name in names {
        let pkg = decode(&personalise(&load(&name), &p).unwrap()).unwrap();
        assert_eq!(pkg.header.iccid, p.iccid, "{name}");
        assert_eq!(pkg.imsi(), p.imsi, "{name}");
        assert_eq!(pkg.msisdn(), p.msisdn, "{name}");
        assert!(
            pkg.aka
                .iter()
                .all(|a| a.k.as_deref() == Some(&[0xA5; 16][..])),
            "{name}"
        );
        assert!(
            pkg.aka
                .iter()
                .all(|a| a.opc.as_deref() == Some(&[0x5A; 16][..])),
            "{name}"
        );
    }
}
