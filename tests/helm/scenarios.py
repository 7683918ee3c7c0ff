"""Value combinations rendered by the chart tests (and the store values they are built from)."""

from __future__ import annotations

from typing import Any

POSTGRES = {"type": "postgres", "url": {"secretName": "gw-store", "secretKey": "dsn"}}
REDIS = {"type": "redis", "url": {"secretName": "gw-redis", "secretKey": "url"}}

SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "sidecar-mode": {"mode": "sidecar"},
    "autoscaling": {
        "store": POSTGRES,
        "autoscaling": {
            "enabled": True,
            "minReplicas": 3,
            "maxReplicas": 12,
            "targetMemoryUtilizationPercentage": 80,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
        "pdb": {"minAvailable": 2},
    },
    "existing-secret-envfrom": {"existingSecret": "llm-provider-keys"},
    "existing-secret-mapped": {
        "existingSecret": "llm-provider-keys",
        "envFromSecret": False,
        "secretEnv": {"OPENAI_API_KEY": "openai", "ANTHROPIC_API_KEY": "anthropic"},
        "extraEnvVars": [{"name": "LOG_LEVEL", "value": "debug"}],
        "extraEnvVarsCM": "gateway-extra-env",
    },
    "existing-configmap": {"existingConfigMap": "my-gateway-config", "existingConfigMapKey": "config.yaml"},
    "persistence": {
        "store": {
            "sqlite": {
                "persistence": {
                    "storageClass": "fast-ssd",
                    "size": "5Gi",
                    "annotations": {"backup/enabled": "true"},
                }
            }
        },
    },
    "persistence-existing-claim": {
        "updateStrategy": {"type": "Recreate"},
        "store": {"sqlite": {"persistence": {"existingClaim": "gw-data"}}},
    },
    "sqlite-emptydir": {"store": {"sqlite": {"persistence": {"enabled": False}}}},
    "postgres": {"replicaCount": 3, "store": {**POSTGRES, "ttl": "30d", "leaseSeconds": 15}},
    "redis": {"store": {**REDIS, "ttl": 3600}, "autoscaling": {"enabled": True}},
    "metrics-port": {
        "metrics": {
            "port": 9090,
            "requireKey": True,
            "serviceMonitor": {
                "enabled": True,
                "authorization": {"secretName": "gw-master-key", "secretKey": "key"},
            },
        },
        "networkPolicy": {"enabled": True},
    },
    "metrics": {
        "metrics": {
            "serviceMonitor": {
                "enabled": True,
                "labels": {"release": "kube-prometheus-stack"},
                "scrapeTimeout": "10s",
                "jobLabel": "app.kubernetes.io/name",
                "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}],
                "metricRelabelings": [{"action": "drop", "regex": "go_.*", "sourceLabels": ["__name__"]}],
            }
        }
    },
    "network-policy": {
        "networkPolicy": {
            "enabled": True,
            "allowExternal": False,
            "ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}}],
            "allowExternalEgress": False,
            "extraEgress": [{"ports": [{"port": 443, "protocol": "TCP"}]}],
        }
    },
    "kitchen-sink": {
        "fullnameOverride": "gw",
        "commonLabels": {"team": "ml-platform"},
        "commonAnnotations": {"owner": "ml-platform"},
        "image": {
            "repository": "registry.example/rg",
            "digest": "sha256:" + "a" * 64,
            "pullPolicy": "Always",
            "pullSecrets": [{"name": "regcred"}],
        },
        "extraArgs": ["--log-level", "debug"],
        "service": {"clusterIP": "None", "annotations": {"a": "b"}, "labels": {"c": "d"}},
        "serviceAccount": {"name": "gw-sa", "annotations": {"iam.gke.io/gcp-service-account": "gw@p.iam"}},
        "podAnnotations": {"sidecar.istio.io/inject": "false"},
        "podLabels": {"tier": "gateway"},
        "priorityClassName": "high",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {
                                "matchLabels": {"app.kubernetes.io/instance": "{{ .Release.Name }}"}
                            },
                        },
                    }
                ]
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "responses-gateway"}},
            }
        ],
        "initContainers": [{"name": "wait", "image": "busybox:1.36", "command": ["true"]}],
        "sidecars": [{"name": "log-shipper", "image": "busybox:1.36", "command": ["sleep", "infinity"]}],
        "extraVolumes": [{"name": "ca", "configMap": {"name": "corp-ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
        "lifecycleHooks": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "terminationGracePeriodSeconds": 120,
        "networkPolicy": {"enabled": True},
        "metrics": {"serviceMonitor": {"enabled": True, "namespace": "monitoring"}},
        "autoscaling": {"enabled": True},
        "store": REDIS,
    },
}
