//! The command table's JSON, pinned by snapshots so changes to what the Tauri shell and the HTTP bridge
//! exchange are deliberate.

use tessera_station::commands::Command;
use tessera_station::{CommandError, FieldError, FreezeReason, StationError};

#[test]
fn command_json_shapes() {
    let cmds = vec![
        Command::StartDraft {
            process: "NEW".into(),
        },
        Command::SealDraft { draft: 7 },
        Command::Reject {
            rid: "10001100770000120261120090000".into(),
            reason: "REJ_PHOTO_QUALITY".into(),
        },
        Command::Queue {
            state: Some("AWAITING_APPROVAL".into()),
            limit: 50,
            offset: 0,
        },
        Command::Status,
    ];
    insta::assert_json_snapshot!("commands", cmds);
    let parsed: Command =
        serde_json::from_str(r#"{"op":"approve","input":{"rid":"10001100770000120261120090000"}}"#).unwrap();
    assert!(matches!(parsed, Command::Approve { .. }));
}

#[test]
fn error_json_shapes() {
    let v = CommandError::from(StationError::Validation(vec![FieldError {
        field: "fullName".into(),
        code: "MISSING_LANGUAGE".into(),
        language: Some("fra".into()),
        message: "enter this field in fra too".into(),
    }]));
    let f = CommandError::from(StationError::Frozen(FreezeReason::TooManyAwaitingApproval {
        count: 100,
        limit: 100,
    }));
    let l = CommandError::from(StationError::NoSlot {
        operator: "far1".into(),
    });
    insta::assert_json_snapshot!("errors", vec![v, f, l]);
}
