"""A tiny instance program for the runner's tests: reads its metadata, prints it, may terminate itself.

Run by the local cloud as an instance's boot command. Behaviour is chosen by the user-data:
``exit`` (print and exit, instance stays running), ``sleep`` (print and wait to be killed),
anything else (print and terminate itself through the EC2 API).
"""

import json
import os
import sys
import time
import urllib.request

IMDS = os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"].rstrip("/")


def imds(path, token, method="GET"):
    request = urllib.request.Request(IMDS + path, method=method)
    if method == "PUT":
        request.add_header("X-aws-ec2-metadata-token-ttl-seconds", "60")
    else:
        request.add_header("X-aws-ec2-metadata-token", token)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.read().decode()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def main():
    started = time.time()  # when the runner booted this instance (its process started)
    token = imds("/latest/api/token", None, method="PUT")
    instance_id = imds("/latest/meta-data/instance-id", token)
    index = imds("/latest/meta-data/ami-launch-index", token)
    user_data = imds("/latest/user-data", token)
    info = {
        "instance_id": instance_id,
        "launch_index": int(index),
        "user_data": user_data,
        "zone": imds("/latest/meta-data/placement/availability-zone", token),
        "cwd": os.getcwd(),
        "has_access_key": "AWS_ACCESS_KEY_ID" in os.environ,
        "pid": os.getpid(),
        "started": started,
    }
    print("instance-prog " + json.dumps(info, sort_keys=True), flush=True)
    mode = (user_data or "").strip()
    if mode == "exit":
        return 0
    if mode == "sleep":
        while True:
            time.sleep(1)
    import boto3

    ec2 = boto3.client("ec2")
    print("terminating myself", flush=True)
    ec2.terminate_instances(InstanceIds=[instance_id])
    time.sleep(30)
    return 1


if __name__ == "__main__":
    sys.exit(main())
