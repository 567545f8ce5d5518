//! Where an agent works: its project (found from the working directory), the settings there,
//! the agent definitions it can see, and the model endpoint those settings name.

use std::error::Error;
use std::io;
use std::path::{Path, PathBuf};

use aside_core::Config;

use crate::definitions::{self, Catalog, Roots};
use crate::model::Endpoint;

/// Why the settings for work in a project could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ProjectConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The project's `.aside/config.toml` was refused by [`Config::with_project`]; its error is
    /// kept whole, as a boxed error so that its type is that function's business.
    #[error("{}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
    #[error("reading the project's files failed: {0}")]
    Interrupted(#[source] tokio::task::JoinError),
}

/// Why no model endpoint could be picked.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("no model is configured: set ASIDE_MODEL, or `model` under [agent] in config.toml")]
    NoModel,
    #[error("cannot read the API key file {}: {source}", path.display())]
    KeyFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What marks a project's root: a repository, or the directory of aside or of an agent host
/// whose agent definitions aside reads.
const PROJECT_MARKERS: [&str; 6] = [
    ".git",
    ".aside",
    ".claude",
    ".opencode",
    ".gemini",
    ".codex",
];

/// The directory a task's cwd belongs to: the nearest ancestor with one of the
/// [`PROJECT_MARKERS`], else the cwd itself.
pub fn project_root(cwd: &Path) -> PathBuf {
    for dir in cwd.ancestors() {
        if PROJECT_MARKERS.iter().any(|m| dir.join(m).exists()) {
            return dir.to_path_buf();
        }
    }
    cwd.to_path_buf()
}

/// The settings for work in `project`: the daemon's, with the project's `.aside/config.toml`
/// on top.
pub fn project_config(base: &Config, project: &Path) -> Result<Config, ProjectConfigError> {
    let path = project.join(".aside/config.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => base
            .with_project(&text)
            .map_err(|e| ProjectConfigError::Invalid {
                path,
                source: e.into(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(base.clone()),
        Err(source) => Err(ProjectConfigError::Read { path, source }),
    }
}

/// The agents known in `project`.
pub fn catalog_for(project: &Path) -> Catalog {
    definitions::discover(&Roots::from_env(Some(project.to_path_buf())))
}

/// The settings and the agents for work in `cwd`, read off the runtime's threads (they are
/// files): the settings may be refused, the agents always load (with warnings).
pub async fn load(base: &Config, cwd: &Path) -> (Result<Config, ProjectConfigError>, Catalog) {
    let base = base.clone();
    let cwd = cwd.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        let project = project_root(&cwd);
        (project_config(&base, &project), catalog_for(&project))
    })
    .await;
    read.unwrap_or_else(|e| {
        (
            Err(ProjectConfigError::Interrupted(e)),
            definitions::discover(&Roots::default()),
        )
    })
}

/// Picks the endpoint: the agent's model, else `ASIDE_MODEL`, else the config's; the base URL
/// from `OPENAI_BASE_URL`, else the provider's, else the config's; the key from the daemon's
/// environment or a key file, never from a task's stored spec.
pub fn endpoint(
    config: &Config,
    agent_model: Option<&str>,
    task_env: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<Endpoint, EndpointError> {
    let var = |k: &str| {
        task_env
            .and_then(|e| e.get(k).cloned())
            .filter(|v| !v.trim().is_empty())
            .or_else(|| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    };
    let model = agent_model
        .map(str::to_string)
        .or_else(|| var("ASIDE_MODEL"))
        .or_else(|| config.agent.model.clone())
        .ok_or(EndpointError::NoModel)?;
    let (provider, model) = match model.split_once('/') {
        Some((p, m)) if config.providers.contains_key(p) => (Some(p.to_string()), m.to_string()),
        _ => (config.agent.provider.clone(), model),
    };
    let provider = provider.and_then(|p| config.providers.get(&p).cloned());
    let from_env = var("OPENAI_BASE_URL");
    let keyless = from_env.is_none();
    let base_url = from_env
        .or_else(|| provider.as_ref().map(|p| p.base_url.clone()))
        .unwrap_or_else(|| config.agent.base_url.clone());
    if keyless && config.keyless_urls.contains(&base_url) {
        // Named by the project's config: used without the user's key.
        return Ok(Endpoint {
            base_url,
            api_key: None,
            model,
        });
    }
    let key_var = provider
        .as_ref()
        .and_then(|p| p.api_key_env.clone())
        .unwrap_or_else(|| "OPENAI_API_KEY".into());
    let api_key = match std::env::var(&key_var)
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        Some(k) => Some(k),
        None => match provider.as_ref().and_then(|p| p.api_key_file.as_ref()) {
            Some(file) => {
                let text =
                    std::fs::read_to_string(file).map_err(|source| EndpointError::KeyFile {
                        path: PathBuf::from(file),
                        source,
                    })?;
                text.lines().next().map(|l| l.trim().to_string())
            }
            None => None,
        },
    };
    Ok(Endpoint {
        base_url,
        api_key,
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_the_config() {
        let mut c = Config::default();
        c.agent.model = Some("from-config".into());
        let env: std::collections::BTreeMap<String, String> = [
            ("ASIDE_MODEL".to_string(), "from-env".to_string()),
            (
                "OPENAI_BASE_URL".to_string(),
                "http://127.0.0.1:9/v1".to_string(),
            ),
        ]
        .into();
        let ep = endpoint(&c, None, Some(&env)).unwrap();
        assert_eq!(ep.model, "from-env");
        assert_eq!(ep.base_url, "http://127.0.0.1:9/v1");
        let ep = endpoint(&c, Some("own"), Some(&env)).unwrap();
        assert_eq!(ep.model, "own");
    }

    #[test]
    fn a_missing_key_file_is_an_error_naming_it() {
        let c = Config::parse(
            "[agent]\nprovider = \"p\"\nmodel = \"m\"\n[providers.p]\nbase_url = \"http://x\"\n\
             api_key_env = \"ASIDE_TEST_NEVER_SET\"\napi_key_file = \"/nonexistent/key\"\n",
        )
        .unwrap();
        let err = endpoint(&c, None, Some(&Default::default())).unwrap_err();
        assert!(matches!(err, EndpointError::KeyFile { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("cannot read the API key file /nonexistent/key: "),
            "{err}"
        );
    }

    #[test]
    fn a_refused_project_config_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".aside")).unwrap();
        let path = dir.path().join(".aside/config.toml");
        std::fs::write(&path, "[agent]\nno_such_setting = 1\n").unwrap();
        let err = project_config(&Config::default(), dir.path()).unwrap_err();
        assert!(matches!(err, ProjectConfigError::Invalid { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: ", path.display())),
            "{err}"
        );
        let fine = project_config(&Config::default(), &dir.path().join("elsewhere")).unwrap();
        assert_eq!(fine.agent.model, Config::default().agent.model);
    }
}
