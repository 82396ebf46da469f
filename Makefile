# Deploys vergabe-teilnahme from dist/$(ENV)/, which `npm run synth` writes from config/$(ENV).yaml.
# Thin on purpose: each target calls a script in scripts/, and every script reads the phases,
# files, waits, Secrets and settings from dist/$(ENV)/plan.tsv; no list of them lives here.
# `make` alone lists the targets and the variables.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

## ENV=production      the environment: dist/$(ENV)/, secrets/$(ENV)/, config/$(ENV).yaml
ENV ?= production
export ENV
## KUBE_CONTEXT=...    the kubectl context (default: kubeContext in dist/$(ENV)/plan.tsv)
## DRY_RUN=1           vergabe-deploy, vergabe-smoke: print the phases and commands, call no cluster
## BACKUP=1            vergabe-deploy: back the database cluster up before the migrations
## ALLOW_DIRTY=1       vergabe-deploy: deploy uncommitted changes knowingly
## SMOKE=0             vergabe-deploy: skip the smoke check; SMOKE_ARGS=... adds flags to it
## FORCE=1             vergabe-migrate: delete the existing Job of that name and run it again
## NAME=<secret>       vergabe-secrets-edit: which Secret
## TO_REVISION=<n>     vergabe-rollback: the revision to go back to (default: the previous one)
## TAG=<commit>        vergabe-bump: the app commit whose image to deploy; DIGEST=sha256:<hex> pins it
## APP_DIR=<path>      vergabe-image: the app's checkout to build the image from
## FOLLOW=0 TAIL=<n>   vergabe-logs: print and return; how many lines

.PHONY: help synth test vergabe-image vergabe-bump vergabe-diff vergabe-deploy vergabe-status vergabe-migrate \
	vergabe-seed vergabe-superuser vergabe-logs vergabe-smoke vergabe-restart vergabe-rollback vergabe-secrets-edit \
	vergabe-secrets-init

help: ## list the targets and variables (this screen)
	@printf 'usage: make <target> [VARIABLE=value ...]\n\ntargets:\n'
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / { printf "  %-22s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@printf '\nvariables:\n'
	@sed -n 's/^## /  /p' $(MAKEFILE_LIST)

# The scripts behind `npm run synth` and `npm run docs`, called without npm's own start-up.
synth: ## write dist/ from config/ and the docs generated from it; review and commit the result
	node scripts/synth.js
	node scripts/docs.js

test: ## type check and every test (npm test)
	npm test

vergabe-image: ## build and push the image of APP_DIR's commit, then bump config/$(ENV).yaml to it
	@scripts/image.sh "$(APP_DIR)" "$(ENV)"

vergabe-bump: ## write TAG (and DIGEST) into config/$(ENV).yaml, re-synthesize, show what changed in dist/
	@node scripts/bump.js --env "$(ENV)" --tag "$(TAG)" $(if $(DIGEST),--digest "$(DIGEST)")

vergabe-diff: ## server-side kubectl diff of dist/$(ENV)/ against the cluster (differences are no error)
	@scripts/diff.sh

vergabe-deploy: ## preflight, lock, every phase of the plan in order with its wait, prune, summary, smoke
	@scripts/deploy.sh

vergabe-status: ## one screen: app, image vs dist/, migration, database, certificate, ingress, warnings
	@scripts/status.sh

vergabe-migrate: ## run the migration Job of dist/$(ENV)/, wait for Complete or Failed, print its logs
	@scripts/migrate.sh

vergabe-seed: ## manage.py seed in the running app
	@scripts/ops.sh seed

vergabe-superuser: ## manage.py createsuperuser in the running app (interactive)
	@scripts/ops.sh superuser

vergabe-logs: ## the app's logs, followed
	@scripts/ops.sh logs

vergabe-smoke: ## check the public URL as a browser would (TLS, health, page, assets, http redirect)
	@scripts/ops.sh smoke

vergabe-restart: ## rolling restart of the app, e.g. after a Secret changed (pods read Secrets at start)
	@scripts/ops.sh restart

vergabe-rollback: ## emergency kubectl rollout undo; migrations stay, revert the bump in git after
	@scripts/ops.sh rollback

vergabe-secrets-edit: ## edit one encrypted Secret with sops: NAME=<secret>
	@scripts/ops.sh secrets-edit

vergabe-secrets-init: ## create the missing secrets/$(ENV)/*.sops.yaml with fresh values
	@scripts/secrets-init.sh $(ENV)
