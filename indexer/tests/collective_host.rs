//! Host-side tests of the collective layer: no GPU and no libnccl needed (NVRTC is).

use dsa_indexer::collective::fingerprint::{
    fingerprint_row, fingerprint_rows, reference_mismatches,
};
use dsa_indexer::collective::kernels::all_specs;
use dsa_indexer::collective::*;
use dsa_jit_cache::{Arch, CacheConfig, JitCache, registered_families};

#[test]
fn verify_kernels_compile_without_warnings_for_every_ci_target() {
    let jit = JitCache::new(CacheConfig { dir: None });
    for spec in all_specs() {
        for arch in Arch::CI_TARGETS {
            let img = jit
                .image(&spec, arch)
                .unwrap_or_else(|e| panic!("{} for {arch}: {e}", spec.id));
            assert!(
                img.log.trim().is_empty(),
                "{} for {arch} warns:\n{}",
                spec.id,
                img.log
            );
        }
    }
}

#[test]
fn the_family_is_registered() {
    let fam = registered_families()
        .into_iter()
        .find(|f| f.name == "collective")
        .expect("collective family registered");
    assert_eq!((fam.all)().len(), all_specs().len());
}

#[test]
fn invalid_world_sizes_and_ranks_are_typed_errors_before_nccl_is_touched() {
    let bad = [(0usize, 0usize), (1, 1), (5, 4), (0, i32::MAX as usize + 1)];
    for (rank, ws) in bad {
        match validate_world(rank, ws) {
            Err(CollectiveError::InvalidWorldSize { world_size }) => assert_eq!(world_size, ws),
            Err(CollectiveError::InvalidRank {
                rank: r,
                world_size,
            }) => {
                assert_eq!((r, world_size), (rank, ws))
            }
            other => panic!("({rank}, {ws}) gave {other:?}"),
        }
    }
    // The messages say what is wrong.
    let msg = validate_world(3, 2).unwrap_err().to_string();
    assert!(
        msg.contains("rank 3") && msg.contains("world size 2"),
        "{msg}"
    );
}

#[test]
fn unique_ids_are_validated() {
    assert!(UniqueId::from_bytes(&[]).is_err());
    assert!(UniqueId::from_bytes(&[0u8; 128]).is_err());
    assert!(UniqueId::from_hex("00").is_err());
    let id = UniqueId::from_bytes(&[7u8; 128]).unwrap();
    assert_eq!(UniqueId::from_hex(&id.to_hex()).unwrap(), id);
}

#[test]
fn policy_workspace_sizes() {
    for rows in [1usize, 19, 256, 989] {
        let l = WorkspaceLayout::verify(rows);
        assert_eq!(
            ConsistencyPolicy::Verify.workspace_bytes(rows),
            l.total_bytes
        );
        assert_eq!(
            ConsistencyPolicy::VerifyThenBroadcast.workspace_bytes(rows),
            l.total_bytes
        );
        assert_eq!(ConsistencyPolicy::Broadcast.workspace_bytes(rows), 0);
        assert_eq!(ConsistencyPolicy::None.workspace_bytes(rows), 0);
        // Verify moves 16 B/row against the broadcast's 4·k.
        assert_eq!(l.allreduce_bytes() * 512, rows * 4 * 2048);
    }
}

#[test]
fn fingerprint_reference_properties() {
    let k = 2048;
    let rows: Vec<i32> = (0..4 * k as i32)
        .map(|i| i.wrapping_mul(40503) % 131_071)
        .collect();
    let fps = fingerprint_rows(&rows, k);
    assert_eq!(fps.len(), 4);
    assert_eq!(fps[1], fingerprint_row(&rows[k..2 * k]));
    // Order inside a row matters; a single changed index always shows.
    let mut swapped = rows.clone();
    swapped.swap(2 * k + 3, 2 * k + 900);
    assert_eq!(reference_mismatches(&[&rows, &swapped], k), vec![2]);
    let mut changed = rows.clone();
    changed[3 * k + k - 1] ^= 1;
    assert_eq!(reference_mismatches(&[&rows, &changed], k), vec![3]);
    assert!(reference_mismatches(&[&rows, &rows, &rows], k).is_empty());
}

#[test]
fn error_messages_carry_context() {
    let e = CollectiveError::ForeignBuffer {
        what: "verify workspace",
        registered_with: 3,
        used_with: 4,
    };
    let m = e.to_string();
    assert!(m.contains("#3") && m.contains("#4"), "{m}");
    let t = CollectiveError::Timeout {
        what: "verify",
        timeout: std::time::Duration::from_secs(2),
        aborted: true,
    }
    .to_string();
    assert!(t.contains("2s") && t.contains("aborted"), "{t}");
}
