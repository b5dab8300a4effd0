"""botocore's S3 presigned GET URL (the reference for src/storage/sigv4.ts presignGet), at a fixed signing time.

usage: presign.py URL ACCESS_KEY SECRET REGION EPOCH_SECONDS EXPIRES_SECONDS  -> prints the URL
"""
import datetime
import sys
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

url, ak, sk, region, epoch, expires = sys.argv[1:7]
at = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).replace(tzinfo=None)
with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
    req = AWSRequest(method="GET", url=url)
    botocore.auth.S3SigV4QueryAuth(Credentials(ak, sk), "s3", region, expires=int(expires)).add_auth(req)
    print(req.url)
