using System.Text;

namespace DistEmu.Client.Tests;

/// <summary>
/// Bad machine files get a clear error, never a crash: the preset files, damaged at random (truncated, brackets and
/// quotes broken, values of the wrong type, numbers far out of range, keys duplicated or lines dropped), make
/// <c>run --machine</c> exit 0 (still a valid machine) or 2 with one line on stderr and no stack trace — never 1.
/// </summary>
public sealed class PresetFuzzTests : InProcessCliTests
{
    private static readonly string[] Junk = ["x", "-1", "0", "1e400", "99999999999999999999", "[", "]", "{", "}", "'", "\"", ": :", "null", "~", "&a", "*a", "!!int x", "- ", "\t"];

    private static string PresetsDir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "DistEmu.sln"))) dir = dir.Parent;
        return Path.Combine(dir!.FullName, "presets");
    }

    /// <summary>One random damage to <paramref name="text"/>.</summary>
    private static string Mutate(string text, Random rng)
    {
        var lines = text.Split('\n').ToList();
        int line = rng.Next(lines.Count);
        switch (rng.Next(7))
        {
            case 0: // truncated anywhere
                return text[..rng.Next(text.Length)];
            case 1: // one character of structure inserted or deleted
                {
                    int at = rng.Next(text.Length);
                    return rng.Next(2) == 0 ? text.Remove(at, 1) : text.Insert(at, "[]{}'\":,-#"[rng.Next(10)].ToString());
                }
            case 2: // a value replaced by junk
                {
                    int colon = lines[line].IndexOf(':', StringComparison.Ordinal);
                    if (colon < 0) goto case 3;
                    lines[line] = lines[line][..(colon + 1)] + " " + Junk[rng.Next(Junk.Length)];
                    return string.Join('\n', lines);
                }
            case 3: // a line dropped
                lines.RemoveAt(line);
                return string.Join('\n', lines);
            case 4: // a line duplicated
                lines.Insert(line, lines[line]);
                return string.Join('\n', lines);
            case 5: // a number scaled far out of range
                {
                    var sb = new StringBuilder(text);
                    int digit = text.IndexOfAny("0123456789".ToCharArray(), rng.Next(text.Length));
                    if (digit < 0) return text + "\n" + Junk[rng.Next(Junk.Length)];
                    sb.Insert(digit, rng.Next(2) == 0 ? "9999999999" : "-");
                    return sb.ToString();
                }
            default: // indentation broken
                lines[line] = new string(' ', rng.Next(1, 7)) + lines[line].TrimStart();
                return string.Join('\n', lines);
        }
    }

    [Fact]
    public void Randomly_damaged_presets_exit_0_or_2_with_one_line_and_no_stack_trace()
    {
        var presets = Directory.GetFiles(PresetsDir(), "*.yaml").OrderBy(p => p, StringComparer.Ordinal).Select(File.ReadAllText).ToArray();
        Assert.NotEmpty(presets);
        var rng = new Random(20261205);
        int valid = 0, rejected = 0;
        for (int i = 0; i < 2000; i++)
        {
            string text = presets[rng.Next(presets.Length)];
            for (int k = rng.Next(1, 4); k > 0; k--) text = Mutate(text, rng);
            var file = Path.Combine(_tmp, "m.yaml");
            File.WriteAllText(file, text);
            var outDir = Path.Combine(_tmp, $"out{i}");
            var (code, _, stderr) = Cli("run", "--machine", file, "--engine", "sim", "--tasks", "1", "--ops", "1", "--out", outDir);
            string what = $"case {i}: exit {code}\n--- stderr\n{stderr}\n--- file\n{text}";
            Assert.True(code is 0 or 2, what);
            Assert.DoesNotContain("   at ", stderr);
            if (code == 2)
            {
                rejected++;
                Assert.True(Lines(stderr).Length == 1, what);
                Assert.StartsWith("distemu: error: ", stderr);
                Assert.False(Directory.Exists(outDir), what); // nothing half-written
            }
            else
            {
                valid++;
                Directory.Delete(outDir, true);
            }
        }
        Assert.True(rejected > 0 && valid > 0, $"{valid} valid, {rejected} rejected: the damage should produce both");
    }
}
