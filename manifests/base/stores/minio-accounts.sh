#!/bin/sh
# MLflow's own MinIO account, run by the Job qubeflow-minio-accounts with the root keys
# (Secret qubeflow-minio): the artifact bucket, the policy mlflow-artifacts (the file next to
# this one: objects of that bucket only), the user of Secret qubeflow-mlflow-s3 with that
# policy. Idempotent: `mc mb --ignore-existing`; `policy create` replaces the policy, `user add`
# resets an existing user's secret key (rotation: change the Secret, re-run the Job), `policy
# attach` of an attached policy is a no-op.
# No key is on a command line (argv is world-readable): mc reads the root keys from the alias's
# MC_HOST_ variable and the user's secret key from stdin (`mc admin user add ALIAS ACCESSKEY`
# with no SECRETKEY reads one line); printf is a shell builtin, no process of its own.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"  # Secret qubeflow-minio
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"  # Secret qubeflow-mlflow-s3
BUCKET=mlflow-artifacts
POLICY=mlflow-artifacts
POLICY_FILE="${0%/*}/mlflow-artifacts-policy.json"  # in the same ConfigMap as this script

# mc splits MC_HOST_<alias>=scheme://ACCESS:SECRET@host by regex, without URL-decoding: a ':'
# in the root keys would be read as a session token, so refuse it. The MLflow user must not
# be the root user (whose keys MinIO's admin API cannot change).
case "$MINIO_ROOT_USER$MINIO_ROOT_PASSWORD" in
  *:*) echo "MINIO_ROOT_USER/MINIO_ROOT_PASSWORD contain ':', which MC_HOST_ cannot carry" >&2
       exit 1 ;;
esac
if [ "$AWS_ACCESS_KEY_ID" = "$MINIO_ROOT_USER" ]; then
  echo "AWS_ACCESS_KEY_ID of qubeflow-mlflow-s3 must not be the MinIO root user" >&2
  exit 1
fi
export MC_HOST_qubeflow="http://${MINIO_ROOT_USER}:${MINIO_ROOT_PASSWORD}@qubeflow-minio:9000"

mc mb --ignore-existing "qubeflow/$BUCKET"
mc admin policy create qubeflow "$POLICY" "$POLICY_FILE"
printf '%s\n' "$AWS_SECRET_ACCESS_KEY" | mc admin user add qubeflow "$AWS_ACCESS_KEY_ID"
mc admin policy attach qubeflow "$POLICY" --user "$AWS_ACCESS_KEY_ID"
echo "MLflow's MinIO user $AWS_ACCESS_KEY_ID has policy $POLICY on bucket $BUCKET"
