"""The artifact half of tests.support.wandb_backend: W&B's artifact versions (a launch job is
one), their manifests and files, as wandb 0.31's client creates, commits and downloads them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

CREATED_AT = "2026-01-01T00:00:00"


@dataclass
class Artifact:
    id: str
    entity: str
    project: str
    collection: str
    type: str
    digest: str
    version_index: int
    metadata: dict = field(default_factory=dict)
    description: str | None = None
    aliases: list[str] = field(default_factory=list)
    state: str = "PENDING"
    manifest: dict | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.entity}/{self.project}/{self.collection}:v{self.version_index}"


class ArtifactStore:
    def __init__(self, backend) -> None:
        self.backend = backend
        self.artifacts: dict[str, Artifact] = {}

    def versions(self, entity: str, project: str, collection: str) -> list[Artifact]:
        return [
            a
            for a in self.artifacts.values()
            if (a.entity, a.project, a.collection) == (entity, project, collection)
        ]

    def find(self, entity: str, project: str, name: str) -> Artifact | None:
        """The version `name` ("collection:alias" or "collection:vN") names, if any."""
        collection, _, alias = name.partition(":")
        alias = alias or "latest"
        for artifact in self.versions(entity, project, collection):
            if alias in artifact.aliases or alias == f"v{artifact.version_index}":
                return artifact
        return None

    def op_ArtifactType(self, variables: dict) -> dict:  # noqa: N802
        artifact = self.find(variables["entity"], variables["project"], variables["name"])
        found = {"artifactType": {"name": artifact.type}} if artifact else None
        return {"project": {"artifact": found}}

    def op_CreateArtifact(self, variables: dict) -> dict:  # noqa: N802 (W&B's names)
        # The Python client sends the input's fields as variables, wandb-core one `input`.
        variables = variables.get("input", variables)
        entity, project = variables["entityName"], variables["projectName"]
        collection = (variables.get("artifactCollectionNames") or [None])[0] or variables[
            "artifactCollectionName"
        ]
        versions = self.versions(entity, project, collection)
        latest = versions[-1] if versions else None
        same = [a for a in versions if a.digest == variables["digest"]]
        artifact = same[0] if same else self._new(variables, entity, project, collection, versions)
        for alias in variables.get("aliases") or []:
            self._alias(artifact, alias["alias"])
        sequence = {"id": f"seq:{entity}/{project}/{collection}", "latestArtifact": None}
        if latest is not None:
            sequence["latestArtifact"] = {"id": latest.id, "versionIndex": latest.version_index}
        return {
            "createArtifact": {
                "artifact": {
                    "id": artifact.id,
                    "state": artifact.state,
                    "artifactSequence": sequence,
                }
            }
        }

    def _new(self, variables, entity, project, collection, versions) -> Artifact:
        artifact = Artifact(
            id=f"artifact-{len(self.artifacts) + 1}",
            entity=entity,
            project=project,
            collection=collection,
            type=variables["artifactTypeName"],
            digest=variables["digest"],
            version_index=len(versions),
            metadata=json.loads(variables.get("metadata") or "{}"),
            description=variables.get("description"),
        )
        self.artifacts[artifact.id] = artifact
        return artifact

    def _alias(self, artifact: Artifact, alias: str) -> None:
        for other in self.versions(artifact.entity, artifact.project, artifact.collection):
            if alias in other.aliases and alias != f"v{other.version_index}":
                other.aliases.remove(alias)
        if alias not in artifact.aliases:
            artifact.aliases.append(alias)

    def op_CreateArtifactManifest(self, variables: dict) -> dict:  # noqa: N802
        return {"createArtifactManifest": self._manifest(variables["artifactID"])}

    def _manifest(self, artifact_id: str) -> dict:
        url = f"{self.backend.url}/storage/{self.manifest_key(artifact_id)}"
        file = {"id": f"manifest-file:{artifact_id}", "uploadUrl": url, "uploadHeaders": []}
        return {"artifactManifest": {"id": f"manifest:{artifact_id}", "file": file}}

    @staticmethod
    def manifest_key(artifact_id: str) -> str:
        return f"artifacts/{artifact_id}/wandb_manifest.json"

    def op_CreateArtifactFiles(self, variables: dict) -> dict:  # noqa: N802
        edges = []
        for file in variables["input"]["artifactFiles"]:
            key = self.file_key(file["md5"])
            node = {
                "storagePath": key,
                "uploadUrl": f"{self.backend.url}/storage/{key}",
                "uploadHeaders": [],
                "uploadMultipartUrls": None,
                "artifact": {"id": file["artifactID"]},
            }
            edges.append({"node": node})
        return {"createArtifactFiles": {"files": {"edges": edges}}}

    @staticmethod
    def file_key(md5_b64: str) -> str:
        return "artifact-files/" + base64.urlsafe_b64decode(md5_b64).hex()

    def op_CommitArtifact(self, variables: dict) -> dict:  # noqa: N802
        artifact = self.artifacts[variables["artifactID"]]
        manifest = self.backend.uploads.get(self.manifest_key(artifact.id))
        artifact.manifest = json.loads(manifest) if manifest else None
        artifact.state = "COMMITTED"
        return {"commitArtifact": {"artifact": {"id": artifact.id, "digest": artifact.digest}}}

    def op_ArtifactByID(self, variables: dict) -> dict:  # noqa: N802
        artifact = self.artifacts.get(variables["id"])
        return {"artifact": self.fragment(artifact) if artifact else None}

    def fragment(self, artifact: Artifact) -> dict:
        """wandb's ArtifactFragment (sdk/artifacts/_generated/fragments.py) of `artifact`."""
        project = {
            "id": f"project:{artifact.entity}/{artifact.project}",
            "internalId": f"project:{artifact.entity}/{artifact.project}",
            "name": artifact.project,
            "entity": {"name": artifact.entity},
        }
        collection = {
            "__typename": "ArtifactSequence",
            "name": artifact.collection,
            "project": project,
        }
        aliases = [
            {
                "__typename": "ArtifactAlias",
                "id": f"alias:{artifact.id}:{a}",
                "alias": a,
                "artifactCollection": collection,
            }
            for a in artifact.aliases
        ]
        entries = (artifact.manifest or {}).get("contents", {})
        return {
            "__typename": "Artifact",
            "id": artifact.id,
            "artifactSequence": collection,
            "versionIndex": artifact.version_index,
            "artifactType": {"name": artifact.type},
            "description": artifact.description,
            "metadata": json.dumps(artifact.metadata),
            "ttlDurationSeconds": -1,
            "ttlIsInherited": True,
            "tags": [],
            "historyStep": None,
            "state": artifact.state,
            "size": sum(e.get("size", 0) for e in entries.values()),
            "digest": artifact.digest,
            "commitHash": None,
            "fileCount": len(entries),
            "createdAt": CREATED_AT,
            "updatedAt": CREATED_AT,
            "aliases": aliases,
        }

    def op_ArtifactMembershipByName(self, variables: dict) -> dict:  # noqa: N802
        artifact = self.find(variables["entity"], variables["project"], variables["name"])
        if artifact is None:
            return {"project": {"artifactCollectionMembership": None}}
        fragment = self.fragment(artifact)
        membership = {
            "__typename": "ArtifactCollectionMembership",
            "id": f"membership:{artifact.id}",
            "versionIndex": artifact.version_index,
            "createdAt": CREATED_AT,
            "aliases": [
                {k: a[k] for k in ("__typename", "id", "alias")} for a in fragment["aliases"]
            ],
            "artifactCollection": fragment["artifactSequence"],
            "artifact": fragment,
        }
        return {"project": {"artifactCollectionMembership": membership}}

    def op_FetchArtifactManifest(self, variables: dict) -> dict:  # noqa: N802
        url = f"{self.backend.url}/storage/{self.manifest_key(variables['id'])}"
        return {"artifact": {"currentManifest": {"file": {"directUrl": url}}}}

    def op_GetArtifactMembershipFileUrls(self, variables: dict) -> dict:  # noqa: N802
        name = f"{variables['collection']}:{variables['alias']}"
        artifact = self.find(variables["entity"], variables["project"], name)
        contents = (artifact.manifest or {}).get("contents", {}) if artifact else {}
        edges = []
        for name, entry in contents.items():
            url = f"{self.backend.url}/storage/{self.file_key(entry['digest'])}"
            edges.append({"node": {"__typename": "File", "name": name, "directUrl": url}})
        page = {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False}
        files = {"pageInfo": page, "edges": edges}
        collection = {"__typename": "ArtifactSequence", "artifactMembership": {"files": files}}
        return {"project": {"artifactCollection": collection}}

    def op_UseArtifact(self, variables: dict) -> dict:  # noqa: N802
        variables = variables.get("input", variables)  # wandb-core sends one `input`
        artifact = self.artifacts[variables["artifactID"]]
        names = (variables["entityName"], variables["projectName"], variables["runName"])
        run = self.backend.run(*names)
        run.inputs.append(artifact.qualified_name)
        used = {
            "id": artifact.id,
            "digest": artifact.digest,
            "description": artifact.description,
            "state": artifact.state,
            "createdAt": CREATED_AT,
            "metadata": json.dumps(artifact.metadata),
        }
        return {"useArtifact": {"artifact": used}}
