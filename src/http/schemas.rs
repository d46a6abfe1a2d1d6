//! The OpenAPI schemas of free-text fields, built from the domain types' own checks, so
//! that what the document calls valid is exactly what the server accepts: a fuzzer
//! that sends a schema-valid name gets it accepted, and a client that validates
//! against the document is never refused a name it allowed.

use std::sync::LazyLock;

use actors::domain::{ClientId, DeviceName, DisplayName, MessageBody};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

/// The longest message body the document states: the default of `--max-message-chars`.
const DOCUMENTED_MAX_MESSAGE_CHARS: usize = 4096;

fn string(description: &str, max_length: usize, pattern: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(max_length))
        .pattern(Some(pattern))
        .description(Some(description))
        .build()
}

/// A display name (a user's or a group's).
pub(crate) fn display_name() -> Object {
    static PATTERN: LazyLock<String> = LazyLock::new(DisplayName::pattern);
    string(
        "1 to 64 characters as given, with a visible one and no control, bidirectional or \
         invisible formatting characters (the zero-width joiners and variation selectors \
         that emoji need are kept). Kept in NFKC, trimmed.",
        64,
        &PATTERN,
    )
}

/// What a device calls itself in the list of sessions.
pub(crate) fn device_name() -> Object {
    static PATTERN: LazyLock<String> = LazyLock::new(DeviceName::pattern);
    let mut schema = string(
        "What to call this device in the list of sessions (the User-Agent without it): \
         1 to 100 characters as given, with no control, bidirectional or invisible ones. \
         Kept in NFKC, trimmed.",
        100,
        &PATTERN,
    );
    schema.min_length = Some(1);
    or_null(schema)
}

/// A message's text.
pub(crate) fn message_content() -> Object {
    static PATTERN: LazyLock<String> = LazyLock::new(MessageBody::pattern);
    string(
        "The text: not only whitespace, at most --max-message-chars (4096) characters. \
         Kept exactly as sent.",
        DOCUMENTED_MAX_MESSAGE_CHARS,
        &PATTERN,
    )
}

/// A send's retry key.
pub(crate) fn client_id() -> Object {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(ClientId::PATTERN))
        .description(Some(
            "The retry key, 1 to 64 printable ASCII characters: a repeat returns the \
             original.",
        ))
        .build();
    or_null(schema)
}

/// An optional field's schema: `null` is as good as leaving it out.
fn or_null(mut schema: Object) -> Object {
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    schema
}
