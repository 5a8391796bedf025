# SPDX-License-Identifier: MIT
"""S3 API black-box tests: the real `aws` CLI (s3api and s3) against `changepipe serve`.

Covers the article's bucket command verbatim, every S3 operation the server implements and
their documented errors, multipart uploads through `aws s3 cp`, and that objects are plain
files under <data>/buckets/<bucket>/ (and never outside it).
"""
import hashlib
import json
import os
import tempfile

from harness import ServerTestCase, main


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


class S3Test(ServerTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cp-s3-")

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def file(self, name, data):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def bucket_path(self, bucket, rel=""):
        return os.path.join(self.server.data, "buckets", bucket, rel)

    def mb(self, bucket):
        self.aws.ok("s3api", "create-bucket", "--bucket", bucket)

    # -- buckets ------------------------------------------------------------------------------

    def test_article_create_bucket(self):
        # The article's command, verbatim apart from --endpoint-url.
        out = self.aws.ok("s3api", "create-bucket", "--bucket", "chat-archive-article",
                          "--region", "ap-northeast-2", "--create-bucket-configuration",
                          "LocationConstraint=ap-northeast-2")
        self.assertEqual(out["Location"], "/chat-archive-article")
        loc = self.aws.ok("s3api", "get-bucket-location", "--bucket", "chat-archive-article")
        self.assertEqual(loc["LocationConstraint"], "ap-northeast-2")
        self.aws.ok("s3api", "head-bucket", "--bucket", "chat-archive-article")
        names = [b["Name"] for b in self.aws.ok("s3api", "list-buckets")["Buckets"]]
        self.assertIn("chat-archive-article", names)
        self.assertTrue(os.path.isdir(self.bucket_path("chat-archive-article")))

    def test_bucket_errors(self):
        self.mb("errs-bucket")
        self.aws.fails("s3api", "create-bucket", "--bucket", "errs-bucket",
                       code="BucketAlreadyOwnedByYou")
        self.aws.fails("s3api", "create-bucket", "--bucket", "ab", code="InvalidBucketName")
        self.aws.fails("s3api", "create-bucket", "--bucket", "Upper-Case",
                       code="InvalidBucketName")
        self.aws.ok("s3api", "put-object", "--bucket", "errs-bucket", "--key", "k")
        self.aws.fails("s3api", "delete-bucket", "--bucket", "errs-bucket",
                       code="BucketNotEmpty")
        self.aws.ok("s3api", "delete-object", "--bucket", "errs-bucket", "--key", "k")
        self.aws.ok("s3api", "delete-bucket", "--bucket", "errs-bucket")
        self.aws.fails("s3api", "delete-bucket", "--bucket", "errs-bucket", code="NoSuchBucket")
        self.aws.fails("s3api", "head-bucket", "--bucket", "errs-bucket", code="404")
        self.aws.fails("s3api", "list-objects-v2", "--bucket", "errs-bucket",
                       code="NoSuchBucket")
        self.assertFalse(os.path.exists(self.bucket_path("errs-bucket")))

    # -- objects ------------------------------------------------------------------------------

    def test_put_get_head_delete(self):
        self.mb("objects-bucket")
        data = b'{"LivestreamID":"x","UID":1}\n'
        src = self.file("in.json", data)
        key = "Livestreams/LivestreamID=x/part 1+2.json"
        out = self.aws.ok("s3api", "put-object", "--bucket", "objects-bucket", "--key", key,
                          "--body", src, "--content-type", "application/json",
                          "--metadata", "origin=blackbox")
        self.assertEqual(out["ETag"], '"%s"' % md5_hex(data))
        head = self.aws.ok("s3api", "head-object", "--bucket", "objects-bucket", "--key", key)
        self.assertEqual(head["ContentLength"], len(data))
        self.assertEqual(head["ContentType"], "application/json")
        self.assertEqual(head["Metadata"], {"origin": "blackbox"})
        self.assertEqual(head["ETag"], '"%s"' % md5_hex(data))
        dst = os.path.join(self.tmp, "out.json")
        self.aws.ok("s3api", "get-object", "--bucket", "objects-bucket", "--key", key, dst)
        self.assertEqual(self.read(dst), data)
        # The object is a plain file at its key's path.
        self.assertEqual(self.read(self.bucket_path("objects-bucket", key)), data)
        self.aws.ok("s3api", "delete-object", "--bucket", "objects-bucket", "--key", key)
        self.aws.fails("s3api", "get-object", "--bucket", "objects-bucket", "--key", key, dst,
                       code="NoSuchKey")
        self.aws.fails("s3api", "head-object", "--bucket", "objects-bucket", "--key", key,
                       code="404")
        self.assertFalse(os.path.exists(self.bucket_path("objects-bucket", "Livestreams")))
        # Deleting a missing key succeeds, as in S3.
        self.aws.ok("s3api", "delete-object", "--bucket", "objects-bucket", "--key", key)

    def test_ranges(self):
        self.mb("range-bucket")
        data = b"0123456789abcdefghij"
        self.aws.ok("s3api", "put-object", "--bucket", "range-bucket", "--key", "r",
                    "--body", self.file("r", data))
        dst = os.path.join(self.tmp, "part")
        for rng, want, content_range in [("bytes=0-9", data[:10], "bytes 0-9/20"),
                                         ("bytes=-5", data[-5:], "bytes 15-19/20"),
                                         ("bytes=5-", data[5:], "bytes 5-19/20")]:
            out = self.aws.ok("s3api", "get-object", "--bucket", "range-bucket", "--key", "r",
                              "--range", rng, dst)
            self.assertEqual(self.read(dst), want, rng)
            self.assertEqual(out["ContentRange"], content_range)
        self.aws.fails("s3api", "get-object", "--bucket", "range-bucket", "--key", "r",
                       "--range", "bytes=20-", dst, code="InvalidRange")

    def test_content_md5(self):
        self.mb("md5-bucket")
        src = self.file("m", b"hello")
        self.aws.ok("s3api", "put-object", "--bucket", "md5-bucket", "--key", "ok",
                    "--body", src, "--content-md5", "XUFAKrxLKna5cZ2REBfFkg==")
        self.aws.fails("s3api", "put-object", "--bucket", "md5-bucket", "--key", "bad",
                       "--body", src, "--content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==",
                       code="BadDigest")
        self.aws.fails("s3api", "head-object", "--bucket", "md5-bucket", "--key", "bad",
                       code="404")

    def test_hostile_keys_stay_in_the_bucket(self):
        self.mb("hostile-bucket")
        self.mb("victim-bucket")
        src = self.file("h", b"payload")
        for key in ["../victim-bucket/planted", "../../escape", "a/../../b", "./x/."]:
            self.aws.ok("s3api", "put-object", "--bucket", "hostile-bucket", "--key", key,
                        "--body", src)
            dst = os.path.join(self.tmp, "back")
            self.aws.ok("s3api", "get-object", "--bucket", "hostile-bucket", "--key", key, dst)
            self.assertEqual(self.read(dst), b"payload")
        out = self.aws.ok("s3api", "list-objects-v2", "--bucket", "victim-bucket")
        self.assertEqual(out.get("Contents", []), [])
        self.assertEqual(sorted(os.listdir(self.bucket_path("victim-bucket"))),
                         [".cp-tmp", ".cp-uploads"])
        self.assertFalse(os.path.exists(os.path.join(self.server.data, "escape")))
        self.assertFalse(os.path.exists(os.path.join(self.server.data, "buckets", "escape")))
        keys = [c["Key"] for c in
                self.aws.ok("s3api", "list-objects-v2", "--bucket", "hostile-bucket")["Contents"]]
        self.assertEqual(sorted(keys), sorted(["../victim-bucket/planted", "../../escape",
                                               "a/../../b", "./x/."]))

    # -- listing ------------------------------------------------------------------------------

    def test_list_objects_v2(self):
        self.mb("list-bucket")
        src = self.file("l", b"x")
        keys = []
        for i in range(30):
            key = f"Livestreams/LivestreamID={i % 3}/obj-{i:03d}.json"
            keys.append(key)
            self.aws.ok("s3api", "put-object", "--bucket", "list-bucket", "--key", key,
                        "--body", src)
        keys.append("top.json")
        self.aws.ok("s3api", "put-object", "--bucket", "list-bucket", "--key", "top.json",
                    "--body", src)
        # The CLI follows NextContinuationToken page by page (7 keys per request).
        out = self.aws.ok("s3api", "list-objects-v2", "--bucket", "list-bucket",
                          "--page-size", "7")
        self.assertEqual([c["Key"] for c in out["Contents"]], sorted(keys))
        self.assertTrue(all(c["Size"] == 1 and c["StorageClass"] == "STANDARD"
                            for c in out["Contents"]))
        # One page only.
        out = self.aws.ok("s3api", "list-objects-v2", "--bucket", "list-bucket",
                          "--max-keys", "5", "--no-paginate")
        self.assertEqual(out["KeyCount"], 5)
        self.assertTrue(out["IsTruncated"])
        self.assertIn("NextContinuationToken", out)
        # Delimiter and prefix.
        out = self.aws.ok("s3api", "list-objects-v2", "--bucket", "list-bucket",
                          "--delimiter", "/")
        self.assertEqual([p["Prefix"] for p in out["CommonPrefixes"]], ["Livestreams/"])
        self.assertEqual([c["Key"] for c in out["Contents"]], ["top.json"])
        out = self.aws.ok("s3api", "list-objects-v2", "--bucket", "list-bucket",
                          "--prefix", "Livestreams/", "--delimiter", "/")
        self.assertEqual([p["Prefix"] for p in out["CommonPrefixes"]],
                         [f"Livestreams/LivestreamID={i}/" for i in range(3)])
        out = self.aws.ok("s3api", "list-objects-v2", "--bucket", "list-bucket",
                          "--start-after", "Livestreams/LivestreamID=2/obj-029.json")
        self.assertEqual([c["Key"] for c in out["Contents"]], ["top.json"])
        # ListObjects (v1) too.
        out = self.aws.ok("s3api", "list-objects", "--bucket", "list-bucket", "--prefix",
                          "Livestreams/LivestreamID=1/")
        self.assertEqual(len(out["Contents"]), 10)

    # -- aws s3: multipart, sync, recursive rm, copy ------------------------------------------

    def test_s3_cp_multipart(self):
        self.mb("cp-bucket")
        data = os.urandom(20 * 1024 * 1024 + 123)  # > 8 MB: the CLI uploads in parts
        src = self.file("big.bin", data)
        self.aws.ok("s3", "cp", "--no-progress", src, "s3://cp-bucket/big/file.bin")
        head = self.aws.ok("s3api", "head-object", "--bucket", "cp-bucket",
                           "--key", "big/file.bin")
        self.assertEqual(head["ContentLength"], len(data))
        part = 8 * 1024 * 1024
        digests = b"".join(hashlib.md5(data[i:i + part]).digest()
                           for i in range(0, len(data), part))
        self.assertEqual(head["ETag"], '"%s-3"' % md5_hex(digests))
        dst = os.path.join(self.tmp, "down.bin")
        self.aws.ok("s3", "cp", "--no-progress", "s3://cp-bucket/big/file.bin", dst)
        self.assertEqual(self.read(dst), data)
        self.assertEqual(self.read(self.bucket_path("cp-bucket", "big/file.bin")), data)
        self.assertEqual(os.listdir(self.bucket_path("cp-bucket", ".cp-uploads")), [])
        self.assertEqual(os.listdir(self.bucket_path("cp-bucket", ".cp-tmp")), [])

    def test_s3_sync_ls_rm(self):
        self.mb("sync-bucket")
        for i in range(25):
            self.file(f"tree/p{i % 4}/f{i}.txt", f"file {i}\n".encode())
        self.aws.ok("s3", "sync", "--only-show-errors", os.path.join(self.tmp, "tree"),
                    "s3://sync-bucket/tree/")
        _, out, _ = self.aws.run("s3", "ls", "--recursive", "s3://sync-bucket/tree/")
        self.assertEqual(len(out.strip().splitlines()), 25)
        self.assertEqual(self.read(self.bucket_path("sync-bucket", "tree/p1/f5.txt")),
                         b"file 5\n")
        self.aws.ok("s3", "rm", "--only-show-errors", "--recursive", "s3://sync-bucket/tree/")
        out = self.aws.ok("s3api", "list-objects-v2", "--bucket", "sync-bucket")
        self.assertEqual(out.get("Contents", []), [])
        self.assertFalse(os.path.exists(self.bucket_path("sync-bucket", "tree")))
        self.aws.ok("s3", "rb", "s3://sync-bucket")

    def test_copy_and_multi_delete(self):
        self.mb("copy-bucket")
        src = self.file("c", b"copy me")
        self.aws.ok("s3api", "put-object", "--bucket", "copy-bucket", "--key", "a",
                    "--body", src, "--content-type", "text/plain")
        out = self.aws.ok("s3api", "copy-object", "--bucket", "copy-bucket", "--key", "b",
                          "--copy-source", "copy-bucket/a")
        self.assertEqual(out["CopyObjectResult"]["ETag"], '"%s"' % md5_hex(b"copy me"))
        head = self.aws.ok("s3api", "head-object", "--bucket", "copy-bucket", "--key", "b")
        self.assertEqual(head["ContentType"], "text/plain")
        self.aws.ok("s3", "cp", "--no-progress", "s3://copy-bucket/b", "s3://copy-bucket/c")
        out = self.aws.ok("s3api", "delete-objects", "--bucket", "copy-bucket", "--delete",
                          json.dumps({"Objects": [{"Key": "a"}, {"Key": "b"},
                                                  {"Key": "missing"}]}))
        self.assertEqual(sorted(d["Key"] for d in out["Deleted"]), ["a", "b", "missing"])
        keys = [c["Key"] for c in
                self.aws.ok("s3api", "list-objects-v2", "--bucket", "copy-bucket")["Contents"]]
        self.assertEqual(keys, ["c"])

    def test_multipart_api(self):
        self.mb("mpu-bucket")
        up = self.aws.ok("s3api", "create-multipart-upload", "--bucket", "mpu-bucket",
                         "--key", "m.bin")
        uid = up["UploadId"]
        p1 = os.urandom(5 * 1024 * 1024)
        p2 = b"tail"
        e1 = self.aws.ok("s3api", "upload-part", "--bucket", "mpu-bucket", "--key", "m.bin",
                         "--upload-id", uid, "--part-number", "1",
                         "--body", self.file("p1", p1))["ETag"]
        e2 = self.aws.ok("s3api", "upload-part", "--bucket", "mpu-bucket", "--key", "m.bin",
                         "--upload-id", uid, "--part-number", "2",
                         "--body", self.file("p2", p2))["ETag"]
        parts = self.aws.ok("s3api", "list-parts", "--bucket", "mpu-bucket", "--key", "m.bin",
                            "--upload-id", uid)["Parts"]
        self.assertEqual([(p["PartNumber"], p["Size"]) for p in parts], [(1, len(p1)), (2, 4)])
        bad = self.file("bad.json", json.dumps(
            {"Parts": [{"PartNumber": 1, "ETag": e1},
                       {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'}]}).encode())
        self.aws.fails("s3api", "complete-multipart-upload", "--bucket", "mpu-bucket",
                       "--key", "m.bin", "--upload-id", uid,
                       "--multipart-upload", "file://" + bad, code="InvalidPart")
        order = self.file("order.json", json.dumps(
            {"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]}).encode())
        self.aws.fails("s3api", "complete-multipart-upload", "--bucket", "mpu-bucket",
                       "--key", "m.bin", "--upload-id", uid,
                       "--multipart-upload", "file://" + order, code="InvalidPartOrder")
        good = self.file("good.json", json.dumps(
            {"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]}).encode())
        out = self.aws.ok("s3api", "complete-multipart-upload", "--bucket", "mpu-bucket",
                          "--key", "m.bin", "--upload-id", uid,
                          "--multipart-upload", "file://" + good)
        want = md5_hex(hashlib.md5(p1).digest() + hashlib.md5(p2).digest())
        self.assertEqual(out["ETag"], '"%s-2"' % want)
        self.assertEqual(self.read(self.bucket_path("mpu-bucket", "m.bin")), p1 + p2)
        self.aws.fails("s3api", "complete-multipart-upload", "--bucket", "mpu-bucket",
                       "--key", "m.bin", "--upload-id", uid,
                       "--multipart-upload", "file://" + good, code="NoSuchUpload")
        # Too small a non-final part, and abort.
        up = self.aws.ok("s3api", "create-multipart-upload", "--bucket", "mpu-bucket",
                         "--key", "small")
        uid = up["UploadId"]
        es = [self.aws.ok("s3api", "upload-part", "--bucket", "mpu-bucket", "--key", "small",
                          "--upload-id", uid, "--part-number", str(n),
                          "--body", self.file(f"s{n}", b"tiny"))["ETag"] for n in (1, 2)]
        small = self.file("small.json", json.dumps(
            {"Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), es)]}).encode())
        self.aws.fails("s3api", "complete-multipart-upload", "--bucket", "mpu-bucket",
                       "--key", "small", "--upload-id", uid,
                       "--multipart-upload", "file://" + small, code="EntityTooSmall")
        self.aws.ok("s3api", "abort-multipart-upload", "--bucket", "mpu-bucket", "--key", "small",
                    "--upload-id", uid)
        self.aws.fails("s3api", "abort-multipart-upload", "--bucket", "mpu-bucket",
                       "--key", "small", "--upload-id", uid, code="NoSuchUpload")
        self.assertEqual(os.listdir(self.bucket_path("mpu-bucket", ".cp-uploads")), [])


if __name__ == "__main__":
    main()
