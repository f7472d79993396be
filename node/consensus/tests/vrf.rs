//! ECVRF-EDWARDS25519-SHA512-TAI against the test vectors of RFC 9381 appendix B.3.

use cpc_consensus::vrf::{self, VrfError, VrfSecret};

struct Vector {
    sk: &'static str,
    pk: &'static str,
    alpha: &'static str,
    pi: &'static str,
    beta: &'static str,
}

const VECTORS: [Vector; 3] = [
    Vector {
        sk: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        pk: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        alpha: "",
        pi: "8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab1268a1b0db10836d9826a528ca76567805",
        beta: "90cf1df3b703cce59e2a35b925d411164068269d7b2d29f3301c03dd757876ff66b71dda49d2de59d03450451af026798e8f81cd2e333de5cdf4f3e140fdd8ae",
    },
    Vector {
        sk: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        pk: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        alpha: "72",
        pi: "f3141cd382dc42909d19ec5110469e4feae18300e94f304590abdced48aed5933bf0864a62558b3ed7f2fea45c92a465301b3bbf5e3e54ddf2d935be3b67926da3ef39226bbc355bdc9850112c8f4b02",
        beta: "eb4440665d3891d668e7e0fcaf587f1b4bd7fbfe99d0eb2211ccec90496310eb5e33821bc613efb94db5e5b54c70a848a0bef4553a41befc57663b56373a5031",
    },
    Vector {
        sk: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        pk: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        alpha: "af82",
        pi: "9bc0f79119cc5604bf02d23b4caede71393cedfbb191434dd016d30177ccbf8096bb474e53895c362d8628ee9f9ea3c0e52c7a5c691b6c18c9979866568add7a2d41b00b05081ed0f58ee5e31b3a970e",
        beta: "645427e5d00c62a23fb703732fa5d892940935942101e456ecca7bb217c61c452118fec1219202a0edcf038bb6373241578be7217ba85a2687f7a0310b2df19f",
    },
];

fn arr<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

#[test]
fn rfc_9381_vectors_prove_and_verify() {
    for v in &VECTORS {
        let sk = VrfSecret::from_seed(&arr(v.sk));
        assert_eq!(hex::encode(sk.public()), v.pk);
        let alpha = hex::decode(v.alpha).unwrap();
        let (pi, beta) = sk.prove(&alpha);
        assert_eq!(hex::encode(pi), v.pi, "proof for alpha {:?}", v.alpha);
        assert_eq!(hex::encode(beta), v.beta);
        assert_eq!(
            vrf::verify(&arr(v.pk), &alpha, &arr(v.pi)).map(hex::encode),
            Ok(v.beta.to_owned())
        );
    }
}

#[test]
fn any_change_to_proof_input_or_key_is_rejected() {
    let v = &VECTORS[1];
    let pk: [u8; 32] = arr(v.pk);
    let pi: [u8; 80] = arr(v.pi);
    for byte in 0..80 {
        let mut bad = pi;
        bad[byte] ^= 0x10;
        assert!(
            vrf::verify(&pk, &[0x72], &bad).is_err(),
            "flipped byte {byte}"
        );
    }
    assert_eq!(vrf::verify(&pk, &[0x73], &pi), Err(VrfError::Proof));
    assert!(vrf::verify(&arr(VECTORS[0].pk), &[0x72], &pi).is_err());
    // Small-order and undecodable keys.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        vrf::verify(&identity, &[0x72], &pi),
        Err(VrfError::PublicKey)
    );
    let mut not_point = [0u8; 32];
    not_point[0] = 2;
    assert_eq!(
        vrf::verify(&not_point, &[0x72], &pi),
        Err(VrfError::PublicKey)
    );
}
