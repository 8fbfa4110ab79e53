from django.conf import settings
from django.db import models


class Team(models.Model):
    """A group of operators; queues name the teams allowed to work them."""

    name = models.SlugField(max_length=64, unique=True)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    OPERATOR = "operator", "Operator"
    SUPERVISOR = "supervisor", "Supervisor"


class Principal(models.Model):
    """Who a user is to Tollgate: an agent scoped to workflows, or a person in teams."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="principal")
    role = models.CharField(max_length=16, choices=Role.choices)
    teams = models.ManyToManyField(Team, blank=True, related_name="members")
    workflows = models.ManyToManyField("exceptions_app.Workflow", blank=True, related_name="agents")

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.role})"


class ApiToken(models.Model):
    """A bearer token. Only the SHA-256 of the secret is stored; the prefix identifies it in lists."""

    principal = models.ForeignKey(Principal, on_delete=models.CASCADE, related_name="tokens")
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… for {self.principal}"
