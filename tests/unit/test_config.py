from __future__ import annotations

from pathlib import Path

import pytest

from telephony import cli
from telephony.config import DEFAULT_CONFIG_FILE, Config, ConfigError, as_set_flags, load

REPO = Path(__file__).resolve().parents[2]


def test_default_file_documents_exactly_the_embedded_defaults() -> None:
    assert load(REPO / DEFAULT_CONFIG_FILE, env={}) == Config()


def test_precedence_file_env_cli(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[agi]\nport = 4600\nbind = "127.0.0.9"\n[ami]\nkeepalive_s = 2\n')
    env = {"TELEPHONY_AGI_PORT": "4700", "TELEPHONY_TEST_POSTGRES_URL": "ignored"}
    config = load(path, env=env, overrides=["agi.port=4800"])
    assert config.agi.port == 4800
    assert config.agi.bind == "127.0.0.9"
    assert config.ami.keepalive_s == 2.0
    assert load(path, env=env).agi.port == 4700
    assert load(path, env={}).agi.port == 4600


def test_config_env_var_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[asterisk]\nsip_port = 5099\n")
    assert load(None, env={"TELEPHONY_CONFIG": str(path)}).asterisk.sip_port == 5099


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[asterisk]\nsip_port = 70000\n", "asterisk.sip_port: expected a port"),
        ('[asterisk]\nsip_port = "x"\n', "asterisk.sip_port: expected int"),
        ("[asterisk]\nsip_prot = 5060\n", "asterisk.sip_prot: unknown key"),
        ("[nope]\nx = 1\n", "nope.x: unknown key"),
        ('[service]\nlog_level = "loud"\n', "service.log_level: expected one of"),
        ("[agi\n", "invalid TOML"),
    ],
)
def test_bad_file_value_names_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path, env={})
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_bad_env_and_cli_values_name_their_origin() -> None:
    with pytest.raises(ConfigError, match=r"environment TELEPHONY_AGI_PORT: agi\.port"):
        load(None, env={"TELEPHONY_AGI_PORT": "many"})
    with pytest.raises(ConfigError, match=r"command line --set: agi\.port: expected a port"):
        load(None, env={}, overrides=["agi.port=0"])
    with pytest.raises(ConfigError, match=r"expected section\.key=value"):
        load(None, env={}, overrides=["agi.port"])


def test_cli_exits_non_zero_with_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[asterisk]\nami_port = -1\n")
    assert cli.main(["--config", str(path), "asterisk", "status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(path) in err[0] and "asterisk.ami_port" in err[0]


def test_set_flags_give_a_child_process_exactly_the_same_config() -> None:
    config = load(None, env={}, overrides=["ami.permit=10.20.0.9/32,10.20.1.0/24",
                                           "location.pidf_lo=true", "agi.port=4999"])
    assert load(None, env={}, overrides=as_set_flags(config)[1::2]) == config
