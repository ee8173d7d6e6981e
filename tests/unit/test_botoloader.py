"""One botocore data loader per process and data path (awsac_agent.botoloader)."""

from __future__ import annotations

import time

import botocore.session
import pytest
from awsac_agent.botoloader import share_loader


def test_sessions_share_one_loader_so_a_model_is_parsed_once() -> None:
    first = share_loader(botocore.session.Session())
    second = share_loader(botocore.session.Session())
    loader = first.get_component("data_loader")
    assert second.get_component("data_loader") is loader
    first.create_client("ec2", region_name="us-east-1")
    calls = []
    original = loader.load_data_with_path

    def counting(name: str) -> object:
        calls.append(name)
        return original(name)

    loader.load_data_with_path = counting  # what a cache miss calls
    t0 = time.process_time()
    second.create_client("ec2", region_name="us-east-1")
    print(f"second EC2 client: {time.process_time() - t0:.3f} s of CPU")
    assert not [c for c in calls if "ec2" in c], calls  # the EC2 model came from the cache


def test_another_data_path_gets_its_own_loader(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = share_loader(botocore.session.Session()).get_component("data_loader")
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    custom = share_loader(botocore.session.Session()).get_component("data_loader")
    assert custom is not default
    assert str(tmp_path) in custom.search_paths
