#!/usr/bin/env python3
"""A second S3 client (boto3) for the object-lock test.

  s3-object-lock.py make-bucket BUCKET
      create BUCKET with S3 Object Lock enabled (it must be enabled when a bucket is created)
  s3-object-lock.py inspect BUCKET PREFIX
      for every object version under PREFIX/: its retention, and whether deleting that version
      is refused; prints one JSON object per line

The endpoint and keys come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_REGION, as for firesafe.
"""
import json
import os
import sys

import boto3
from botocore.exceptions import ClientError


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )


def make_bucket(bucket):
    client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)


def inspect(bucket, prefix):
    s3 = client()
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix + "/")
    for page in pages:
        for v in page.get("Versions", []):
            key, version = v["Key"], v["VersionId"]
            out = {"key": key[len(prefix) + 1:], "version": version}
            try:
                r = s3.get_object_retention(Bucket=bucket, Key=key, VersionId=version)
                out["mode"] = r["Retention"]["Mode"]
                out["until"] = r["Retention"]["RetainUntilDate"].isoformat()
            except ClientError as e:
                out["mode"] = None
                out["retention_error"] = e.response["Error"]["Code"]
            try:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
                out["deleted"] = True
            except ClientError as e:
                out["deleted"] = False
                out["delete_error"] = e.response["Error"]["Code"]
            print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make-bucket":
        make_bucket(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "inspect":
        inspect(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
