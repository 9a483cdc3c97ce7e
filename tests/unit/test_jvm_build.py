"""blaze_jvm's build cache and conf helper, with the real javac (no Spark started).

The sources here are one tiny class, so each compile costs javac's start-up (~1 s), not the
plugin's; the cache logic is the same code path ``jar_path()`` takes.
"""

from __future__ import annotations

import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from blaze_errors import JavaError
from blaze_jvm import PLUGIN_CLASS, with_plugin
from blaze_jvm.build import JAR_NAME, SOURCE_ROOT, build_jar, find_javac, spark_jars_dir
from blaze_jvm.conf import JARS_KEY, PLUGINS_KEY, appended

HELLO = "package org.blazespark.probe;\npublic final class Hello { public static int one() { return %d; } }\n"


@pytest.fixture
def sources(tmp_path):
    root = tmp_path / "java"
    (root / "org" / "blazespark" / "probe").mkdir(parents=True)
    (root / "org" / "blazespark" / "probe" / "Hello.java").write_text(HELLO % 1)
    return root


def _build(sources, cache):
    return build_jar(
        sources, classpath_dir=spark_jars_dir(), spark_version="4.3.0", cache_dir=cache
    )


def _no_javac(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(empty))


def test_a_cached_jar_is_reused_without_javac_and_a_changed_source_gets_a_new_one(
    sources, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    jar = _build(sources, cache)
    assert jar.name == JAR_NAME and jar.parent.parent == cache
    with zipfile.ZipFile(jar) as archive:
        assert archive.namelist()[0] == "META-INF/MANIFEST.MF"
        assert "org/blazespark/probe/Hello.class" in archive.namelist()
    built_at = jar.stat().st_mtime_ns

    _no_javac(monkeypatch, tmp_path)  # a rebuild would now fail: reuse must not run javac
    assert _build(sources, cache) == jar
    assert jar.stat().st_mtime_ns == built_at

    monkeypatch.undo()
    (sources / "org" / "blazespark" / "probe" / "Hello.java").write_text(HELLO % 2)
    changed = _build(sources, cache)
    assert changed.parent != jar.parent and changed.is_file() and jar.is_file()
    other_spark = build_jar(
        sources, classpath_dir=spark_jars_dir(), spark_version="4.3.1", cache_dir=cache
    )
    assert other_spark.parent not in {jar.parent, changed.parent}


def test_missing_javac_is_one_line_naming_what_to_install(sources, tmp_path, monkeypatch):
    _no_javac(monkeypatch, tmp_path)
    with pytest.raises(JavaError) as caught:
        _build(sources, tmp_path / "cache")
    message = str(caught.value)
    assert "\n" not in message
    assert "javac not found" in message and "JDK 17" in message and "JAVA_HOME" in message


def test_a_source_that_does_not_compile_is_one_line(sources, tmp_path):
    (sources / "org" / "blazespark" / "probe" / "Hello.java").write_text("class {")
    with pytest.raises(
        JavaError, match=r"^javac failed on blaze-spark's JVM module: .*Hello\.java"
    ):
        _build(sources, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.jar"))


def test_concurrent_builds_run_javac_once_and_make_one_whole_jar(sources, tmp_path, monkeypatch):
    real_javac = find_javac()
    counting = tmp_path / "bin"
    counting.mkdir()
    log = tmp_path / "javac-runs.log"
    (counting / "javac").write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{real_javac}" "$@"\n')
    (counting / "javac").chmod(0o755)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(counting))
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(3) as pool:  # flock excludes across open files, threads included
        jars = list(pool.map(lambda _: _build(sources, cache), range(3)))
    assert len(set(jars)) == 1
    assert log.read_text().split() == ["run"]
    assert sorted(p.name for p in cache.rglob("*")) == sorted(
        [jars[0].parent.name, ".lock", JAR_NAME]
    )
    with zipfile.ZipFile(jars[0]) as archive:
        assert archive.testzip() is None


def test_the_plugin_sources_ship_in_the_package():
    names = {p.name for p in SOURCE_ROOT.rglob("*.java")}
    assert {"BlazePlugin.java", "BlazeDriverPlugin.java", "BlazeExecutorPlugin.java"} <= names


@pytest.mark.parametrize(
    ("current", "item", "expected"),
    [
        (None, "a.jar", "a.jar"),
        ("", "a.jar", "a.jar"),
        ("user.jar", "a.jar", "user.jar,a.jar"),
        ("user.jar, a.jar", "a.jar", "user.jar,a.jar"),
    ],
)
def test_appended_keeps_what_is_there(current, item, expected):
    assert appended(current, item) == expected


def test_with_plugin_appends_to_the_users_values_in_a_mapping_and_a_sparkconf():
    from pyspark import SparkConf

    user = {JARS_KEY: "/opt/user.jar", PLUGINS_KEY: "com.example.Profiler", "k": "v"}
    merged = with_plugin(user, jar="/c/blaze.jar")
    assert merged == {
        JARS_KEY: "/opt/user.jar,/c/blaze.jar",
        PLUGINS_KEY: f"com.example.Profiler,{PLUGIN_CLASS}",
        "k": "v",
    }
    assert user[JARS_KEY] == "/opt/user.jar"  # the argument is left alone
    assert with_plugin(merged, jar="/c/blaze.jar") == merged  # idempotent

    conf = SparkConf(loadDefaults=False).set(PLUGINS_KEY, "com.example.Profiler")
    assert with_plugin(conf, jar="/c/blaze.jar") is conf
    assert conf.get(JARS_KEY) == "/c/blaze.jar"
    assert conf.get(PLUGINS_KEY) == f"com.example.Profiler,{PLUGIN_CLASS}"


def test_with_plugin_names_a_wrong_conf_type():
    with pytest.raises(TypeError, match="not list"):
        with_plugin(["spark.jars"], jar="/c/blaze.jar")
