"""Provider token formats: the keys and tokens whose shape alone says what they are.

Each entry is (kind, literal prefixes, pattern[, screen]), written from the providers' own descriptions of their
token formats (the reference list was the set of services that gitleaks/trufflehog-class scanners
cover; no rule file was copied). A pattern is anchored on its prefix or a fixed structure, so a file
is screened for all prefixes at once (RE2 over a whole batch, stages.secrets) and only the few files
with a hit are matched kind by kind.
"""
from __future__ import annotations

import re

B62 = "A-Za-z0-9"
PROVIDERS: list[tuple] = [     # (kind, prefixes, pattern[, screen: an RE2 expression when the prefix is common])
    # code hosting and package registries
    ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), rf"\bgh[pousr]_[{B62}]{{36}}\b"),
    ("github_fine_grained_token", ("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{82}\b"),
    ("gitlab_token", ("glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glsoat-"),
     r"\bgl(?:pat|dt|rt|ptt|ft|soat)-[A-Za-z0-9_\-]{20,}(?![A-Za-z0-9_\-])"),
    ("gitlab_runner_registration", ("GR1348941",), r"\bGR1348941[A-Za-z0-9_\-]{20}(?![A-Za-z0-9_\-])"),
    ("npm_token", ("npm_",), rf"\bnpm_[{B62}]{{36}}\b"),
    ("pypi_token", ("pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"),
     r"\bpypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_\-]{50,}"),
    ("rubygems_token", ("rubygems_",), r"\brubygems_[0-9a-f]{48}\b"),
    ("nuget_key", ("oy2",), r"\boy2[a-z0-9]{43}\b"),
    ("docker_hub_token", ("dckr_pat_", "dckr_oat_"), r"\bdckr_(?:pat|oat)_[A-Za-z0-9_\-]{27,}(?![A-Za-z0-9_\-])"),
    ("huggingface_token", ("hf_", "api_org_"), r"\b(?:hf_[A-Za-z]{34}|api_org_[A-Za-z]{34})\b"),
    ("bitbucket_app_password", ("ATBB",), rf"\bATBB[{B62}]{{28}}[0-9A-F]{{8}}\b"),
    # AI services
    ("anthropic_key", ("sk-ant-",), r"\bsk-ant-(?:api|admin)\d\d-[A-Za-z0-9_\-]{80,}"),
    ("openai_key", ("sk-",), r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,}(?![A-Za-z0-9_\-])"),
    # mail, messaging, chat
    ("sendgrid_key", ("SG.",), r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b"),
    ("mailgun_key", ("key-",), r"\bkey-[0-9a-f]{32}\b", r"key-[0-9a-f]{32}"),
    ("mailchimp_key", ("-us",), r"\b[0-9a-f]{32}-us\d{1,2}\b", r"[0-9a-f]{32}-us[0-9]"),
    ("twilio_api_key", ("SK",), r"\bSK[0-9a-f]{32}\b", r"SK[0-9a-f]{32}"),
    ("telegram_bot_token", (":AA",), r"\b\d{8,10}:AA[A-Za-z0-9_\-]{33}(?![A-Za-z0-9_\-])", r"[0-9]{8,10}:AA"),
    ("discord_webhook", ("/api/webhooks/",), r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{17,20}/[A-Za-z0-9_\-]{60,68}"),
    ("discord_bot_token", (), r"\b[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38}\b",
     r"[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27}"),
    ("slack_app_token", ("xapp-",), r"\bxapp-\d-[A-Z0-9]+-\d+-[a-f0-9]{64}\b"),
    ("teams_webhook", ("webhook.office.com",), r"https://[\w.\-]+\.webhook\.office\.com/webhookb2/[\w@\-]+/IncomingWebhook/[0-9a-f]{32}/[\w\-]+"),
    # payments and commerce
    ("stripe_key", ("_live_", "_test_"), r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b"),
    ("stripe_webhook_secret", ("whsec_",), rf"\bwhsec_[{B62}]{{32,}}\b"),
    ("square_token", ("sq0atp-", "sq0csp-", "EAAA"), r"\b(?:sq0atp-[A-Za-z0-9_\-]{22}|sq0csp-[A-Za-z0-9_\-]{43}|EAAA[A-Za-z0-9_\-]{60})(?![A-Za-z0-9_\-])"),
    ("braintree_token", ("access_token$production$",), r"access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32}"),
    ("shopify_token", ("shpat_", "shpca_", "shppa_", "shpss_"), r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
    ("flutterwave_key", ("FLWSECK",), r"\bFLWSECK(?:_TEST)?-[a-h0-9]{32}-X\b"),
    ("easypost_key", ("EZAK", "EZTK"), rf"\bEZ[AT]K[{B62}]{{54}}\b"),
    # clouds and infrastructure
    ("google_oauth_client_secret", ("GOCSPX-",), r"\bGOCSPX-[A-Za-z0-9_\-]{28}(?![A-Za-z0-9_\-])"),
    ("google_oauth_token", ("ya29.", "1//0"), r"\b(?:ya29\.[A-Za-z0-9_\-]{30,}|1//0[A-Za-z0-9_\-]{40,})(?![A-Za-z0-9_\-])"),
    ("azure_storage_key", ("AccountKey=",), r"AccountKey=([A-Za-z0-9+/]{86}==)"),
    ("azure_sas_key", ("SharedAccessKey=",), r"SharedAccessKey=([A-Za-z0-9+/]{43}=)"),
    ("azure_ad_client_secret", ("Q~",), r"(?<![A-Za-z0-9_~.\-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}(?![A-Za-z0-9_~.\-])"),
    ("alibaba_access_key", ("LTAI",), rf"\bLTAI[{B62}]{{20}}\b"),
    ("digitalocean_token", ("dop_v1_", "doo_v1_", "dor_v1_"), r"\bdo[opr]_v1_[a-f0-9]{64}\b"),
    ("heroku_key", ("HRKU-",), r"\bHRKU-[A-Za-z0-9_\-]{60}(?![A-Za-z0-9_\-])"),
    ("cloudflare_origin_ca_key", ("v1.0-",), r"\bv1\.0-[a-f0-9]{24}-[a-f0-9]{146}\b"),
    ("vault_token", ("hvs.", "hvb."), r"\bhv[sb]\.[A-Za-z0-9_\-]{24,}(?![A-Za-z0-9_\-])"),
    ("terraform_cloud_token", (".atlasv1.",), rf"\b[{B62}]{{14}}\.atlasv1\.[A-Za-z0-9_\-]{{60,70}}(?![A-Za-z0-9_\-])"),
    ("pulumi_token", ("pul-",), r"\bpul-[a-f0-9]{40}\b"),
    ("doppler_token", ("dp.pt.", "dp.st.", "dp.ct."), rf"\bdp\.(?:pt|st|ct|sa|scim|audit)\.[{B62}]{{40,44}}\b"),
    ("databricks_token", ("dapi",), r"\bdapi[a-f0-9]{32}(?:-\d)?\b"),
    ("supabase_token", ("sbp_",), r"\bsbp_[a-f0-9]{40}\b"),
    ("planetscale_token", ("pscale_tkn_", "pscale_pw_", "pscale_oauth_"), r"\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.\-]{32,64}"),
    # observability and work tools
    ("atlassian_token", ("ATATT3",), r"\bATATT3[A-Za-z0-9_\-=]{180,200}"),
    ("linear_key", ("lin_api_",), rf"\blin_api_[{B62}]{{40}}\b"),
    ("postman_key", ("PMAK-",), r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b"),
    ("new_relic_key", ("NRAK-",), r"\bNRAK-[A-Z0-9]{27}\b"),
    ("grafana_token", ("glc_", "glsa_"), r"\b(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})"),
    ("sentry_token", ("sntrys_", "sntryu_"), r"\b(?:sntrys_[A-Za-z0-9+/=_]{60,}|sntryu_[a-f0-9]{64})"),
    ("mapbox_secret_token", ("sk.eyJ",), r"\bsk\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]{22}"),
    ("dropbox_token", ("sl.",), r"\bsl\.[A-Za-z0-9_\-]{130,}", r"sl\.[A-Za-z0-9_\-]{130}"),
    ("facebook_token", ("EAACEdEose0cBA", "EAAG"), r"\bEAA(?:CEdEose0cBA|G)[A-Za-z0-9]{60,}"),
    ("age_secret_key", ("AGE-SECRET-KEY-1",), r"\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\b"),
]
# (kind, prefixes, pattern, the group to redact: the whole match unless the pattern names a group)
COMPILED = [(entry[0], entry[1], pattern, 1 if pattern.groups else 0) for entry in PROVIDERS for pattern in [re.compile(entry[2])]]
# One RE2 alternation of every kind's screen (its prefixes, or its own expression): what a whole batch
# goes through first. A kind without prefixes is matched on the whole of a file that passes the screen.
SCREEN = "|".join(entry[3] if len(entry) > 3 else "|".join(re.escape(p) for p in entry[1]) for entry in PROVIDERS)
