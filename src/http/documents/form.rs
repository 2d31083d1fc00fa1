//! The upload form, read as a stream: the file goes to disk piece by piece as it arrives, so the
//! spec describes the `multipart/form-data` body while the operation gets poem's raw `Multipart`.

use poem::{FromRequest, Request, RequestBody, http::StatusCode, web::Multipart};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef},
};
use tokio::io::AsyncReadExt;

use crate::{
    domain::validation::Issues,
    http::problem::ApiError,
    service::documents::records::{Upload, UploadForm},
};

/// Bytes read from the client per piece written.
const PIECE: usize = 64 * 1024;

pub struct DocumentForm(Multipart);

fn field_schema(ty: &'static str, format: Option<&'static str>, description: &'static str) -> MetaSchemaRef {
    let mut schema = match format {
        Some(format) => MetaSchema::new_with_format(ty, format),
        None => MetaSchema::new(ty),
    };
    schema.description = Some(description);
    MetaSchemaRef::Inline(Box::new(schema))
}

impl<'a> ApiExtractor<'a> for DocumentForm {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn request_meta() -> Option<MetaRequest> {
        let mut schema = MetaSchema::new("object");
        schema.properties = vec![
            ("file", field_schema("string", Some("binary"), "The document, with its file name.")),
            ("category", field_schema("integer", Some("int64"), "The id of a document category.")),
            ("encounter", field_schema("integer", Some("int64"), "Tag the document to this encounter.")),
        ];
        schema.required = vec!["file", "category"];
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "multipart/form-data",
                schema: MetaSchemaRef::Inline(Box::new(schema)),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(<Multipart as FromRequest>::from_request(request, body).await?))
    }
}

fn bad_body(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, format!("the body is not a readable multipart form: {e}"))
}

impl DocumentForm {
    /// Streams the `file` field into `upload` and collects the other fields.
    pub async fn read_into(mut self, upload: &mut Upload) -> Result<UploadForm, ApiError> {
        let mut form = UploadForm::default();
        let mut issues = Issues::default();
        while let Some(field) = self.0.next_field().await.map_err(bad_body)? {
            let name = field.name().unwrap_or_default().to_string();
            match name.as_str() {
                "file" if !form.has_file => {
                    form.has_file = true;
                    form.file_name = field.file_name().map(str::to_string);
                    form.content_type = field.content_type().map(str::to_string);
                    let mut reader = field.into_async_read();
                    let mut buf = vec![0u8; PIECE];
                    loop {
                        let n = reader.read(&mut buf).await.map_err(bad_body)?;
                        if n == 0 {
                            break;
                        }
                        upload.write(buf[..n].to_vec()).await?;
                    }
                }
                "category" | "encounter" => {
                    let mut raw = String::new();
                    field.into_async_read().take(32).read_to_string(&mut raw).await.map_err(bad_body)?;
                    match raw.trim().parse::<i64>() {
                        Ok(id) if id > 0 && name == "category" => form.category = Some(id),
                        Ok(id) if id > 0 => form.encounter = Some(id),
                        _ => issues.add(&name, "expected a positive whole number"),
                    }
                }
                _ => {}
            }
        }
        Ok(issues.into_result(form)?)
    }
}
