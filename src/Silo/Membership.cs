using System.Globalization;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Orleans.Configuration;
using StackExchange.Redis;

namespace DistEmu.Silo;

/// <summary>
/// The table a cluster keeps its silos in (Orleans membership), shared by the silo program and the cluster client:
/// a redis server (Microsoft.Orleans.Clustering.Redis) or a PostgreSQL database (Microsoft.Orleans.Clustering.AdoNet
/// through Npgsql; its tables come from deploy/sql, applied by <c>distemu db init</c>). One connection syntax for
/// both programs: <c>redis://HOST:PORT</c> or <c>postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE</c>.
/// </summary>
public sealed record Membership
{
    /// <summary>The ADO.NET invariant Orleans resolves Npgsql's factory by.</summary>
    public const string NpgsqlInvariant = "Npgsql";

    public const string Syntax = "redis://HOST:PORT or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE";

    private Membership(string kind, string address, string? connectionString)
    {
        Kind = kind;
        Address = address;
        ConnectionString = connectionString;
    }

    /// <summary>"redis" or "adonet" (the silo program's --clustering value).</summary>
    public string Kind { get; }

    /// <summary>redis: HOST:PORT; adonet: the postgres:// URL as given.</summary>
    public string Address { get; }

    /// <summary>adonet: the Npgsql connection string the URL stands for.</summary>
    public string? ConnectionString { get; }

    public static Membership Redis(string hostPort, Func<string, Exception> error, string what) =>
        IsHostPort(hostPort) ? new Membership("redis", hostPort, null) : throw error($"{what} '{hostPort}': expected HOST:PORT");

    private static bool IsHostPort(string hostPort)
    {
        int colon = hostPort.LastIndexOf(':');
        return colon > 0 && int.TryParse(hostPort[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is >= 1 and <= 65535;
    }

    /// <summary>postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or postgresql://); user and password are percent-decoded.</summary>
    public static Membership Postgres(string url, Func<string, Exception> error, string what)
    {
        Exception Bad(string why) => error($"{what} '{Redacted(url)}': {why}; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("postgres" or "postgresql"))
            throw Bad("not a postgres:// URL");
        if (uri.Host.Length == 0) throw Bad("no host");
        string database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length == 0 || database.Contains('/', StringComparison.Ordinal)) throw Bad("no database");
        if (uri.UserInfo.Length == 0) throw Bad("no user");
        if (uri.Query.Length > 0 || uri.Fragment.Length > 0) throw Bad("no query or fragment is understood");
        int colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
        var cs = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host.Trim('[', ']'),
            Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port,
            Database = database,
            Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]),
            // Without a password in the URL, Npgsql takes PGPASSWORD or ~/.pgpass, as psql does.
            Password = colon < 0 ? null : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]),
        };
        return new Membership("adonet", url, cs.ConnectionString);
    }

    /// <summary>A --cluster value: redis://HOST:PORT or a postgres:// URL.</summary>
    public static Membership ParseUrl(string url, Func<string, Exception> error, string what)
    {
        const string redis = "redis://";
        if (url.StartsWith(redis, StringComparison.OrdinalIgnoreCase) && url[redis.Length..].TrimEnd('/') is var hostPort && IsHostPort(hostPort))
            return new Membership("redis", hostPort, null);
        if (url.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
            return Postgres(url, error, what);
        throw error($"{what} '{Redacted(url)}': expected {Syntax}");
    }

    /// <summary>The URL form (what --cluster takes), without a password.</summary>
    public string Url => Kind == "redis" ? "redis://" + Address : Redacted(Address);

    /// <summary>The silo program's options for this table.</summary>
    public IEnumerable<string> SiloArguments() => Kind == "redis"
        ? ["--clustering", "redis", "--redis", Address]
        : ["--clustering", "adonet", "--postgres", Address];

    public ISiloBuilder UseOn(ISiloBuilder silo) => Kind == "redis"
        ? silo.UseRedisClustering(o => o.ConfigurationOptions = RedisOptions())
        : silo.UseAdoNetClustering(o =>
        {
            o.Invariant = NpgsqlInvariant;
            o.ConnectionString = ConnectionString;
        });

    public IClientBuilder UseOn(IClientBuilder client) => Kind == "redis"
        ? client.UseRedisClustering(o => o.ConfigurationOptions = RedisOptions())
        : client.UseAdoNetClustering(o =>
        {
            o.Invariant = NpgsqlInvariant;
            o.ConnectionString = ConnectionString;
        });

    private ConfigurationOptions RedisOptions()
    {
        var redis = ConfigurationOptions.Parse(Address);
        redis.AbortOnConnectFail = false; // a silo or client started before redis retries instead of failing
        return redis;
    }

    /// <summary>"redis HOST:PORT" or "postgres HOST:PORT/DATABASE" (no user, no password), for messages.</summary>
    public override string ToString() => Kind == "redis" ? "redis " + Address : "postgres " + Address[(Address.IndexOf("://", StringComparison.Ordinal) + 3)..].Split('@')[^1];

    /// <summary>The URL with any password replaced by "***", for messages.</summary>
    public static string Redacted(string url)
    {
        int scheme = url.IndexOf("://", StringComparison.Ordinal), at = url.LastIndexOf('@');
        if (scheme < 0 || at < scheme) return url;
        int colon = url.IndexOf(':', scheme + 3);
        return colon > 0 && colon < at ? url[..(colon + 1)] + "***" + url[at..] : url;
    }
}
