using System.Text.RegularExpressions;
using DistEmu.Silo;
using Npgsql;

namespace DistEmu.Client;

/// <summary>
/// <c>distemu db init</c>: creates the PostgreSQL tables Orleans' ADO.NET clustering needs (the membership version
/// table, the membership table, and the OrleansQuery rows holding the queries Orleans runs), from the scripts Orleans
/// ships (deploy/sql, embedded here). Both scripts run in one transaction, so a failed init leaves nothing behind; an
/// initialised database is left as it is.
/// </summary>
public static partial class DbInit
{
    /// <summary>Orleans' scripts in the order they must run: Main creates OrleansQuery, Clustering fills it.</summary>
    public static readonly string[] Scripts = ["PostgreSQL-Main.sql", "PostgreSQL-Clustering.sql"];

    public static string Script(string name)
    {
        using var stream = typeof(DbInit).Assembly.GetManifestResourceStream("sql." + name)
            ?? throw new InvalidOperationException($"the embedded script {name} is missing from the build");
        return new StreamReader(stream).ReadToEnd();
    }

    /// <summary>The OrleansQuery keys the clustering script inserts (what an initialised database must have).</summary>
    public static IReadOnlyList<string> ClusteringQueryKeys() =>
        QueryKey().Matches(Script("PostgreSQL-Clustering.sql")).Select(m => m.Groups[1].Value).ToList();

    [GeneratedRegex(@"^\s*'(\w+Key)'\s*,", RegexOptions.Multiline)]
    private static partial Regex QueryKey();

    /// <summary>Exit codes: 0 initialised (now or before), 1 the database could not be reached or is half initialised.</summary>
    public static int Run(Membership database, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            stdout.WriteLine(InitAsync(database).GetAwaiter().GetResult());
            return 0;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            stderr.WriteLine($"distemu: error: db init on {database}: {e.GetType().Name}: {e.Message}");
            return 1;
        }
    }

    /// <summary>Applies the scripts unless the database already has them; returns what was done, as one line.</summary>
    public static async Task<string> InitAsync(Membership database)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        bool hasQueries = await Exists(connection, "orleansquery");
        bool hasMembership = await Exists(connection, "orleansmembershiptable");
        if (hasMembership)
        {
            if (!hasQueries)
                throw new InvalidOperationException("OrleansMembershipTable exists but OrleansQuery does not: not a database Orleans' scripts made; left as it is");
            var keys = ClusteringQueryKeys();
            await using var read = new NpgsqlCommand("SELECT querykey FROM orleansquery WHERE querykey = ANY(@keys)", connection);
            read.Parameters.AddWithValue("keys", keys.ToArray());
            var present = new HashSet<string>(StringComparer.Ordinal);
            await using (var reader = await read.ExecuteReaderAsync())
                while (await reader.ReadAsync()) present.Add(reader.GetString(0));
            var missing = keys.Where(k => !present.Contains(k)).ToList();
            if (missing.Count > 0)
                throw new InvalidOperationException($"the membership tables exist but OrleansQuery lacks {string.Join(", ", missing)} (an older Orleans schema?); left as it is");
            return $"db init: {database} is already initialised (membership tables and {keys.Count} clustering queries present); nothing changed";
        }
        await using var tx = await connection.BeginTransactionAsync();
        var applied = new List<string>();
        foreach (var name in Scripts)
        {
            if (name == "PostgreSQL-Main.sql" && hasQueries) continue; // another Orleans provider's init made OrleansQuery
            await using var cmd = new NpgsqlCommand(Script(name), connection, tx);
            await cmd.ExecuteNonQueryAsync();
            applied.Add(name);
        }
        await tx.CommitAsync();
        return $"db init: {database} initialised ({string.Join(", ", applied)} applied)";
    }

    private static async Task<bool> Exists(NpgsqlConnection connection, string table)
    {
        await using var cmd = new NpgsqlCommand("SELECT to_regclass(@t) IS NOT NULL", connection);
        cmd.Parameters.AddWithValue("t", table);
        return (bool)(await cmd.ExecuteScalarAsync())!;
    }
}
