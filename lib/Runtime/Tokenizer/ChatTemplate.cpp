//===- ChatTemplate.cpp - built-in chat templates -------------------------===//
//
// Each renderer reproduces the reference template of its family:
//
//  chatml   <|im_start|>{role}\n{content}<|im_end|>\n ...
//  [<|im_start|>assistant\n]
//           A default system prompt written in the template (Qwen2 / Qwen2.5:
//           '<|im_start|>system\nYou are ...<|im_end|>\n') is used when the
//           conversation has no system message.
//  deepseek {bos}{system prompts, joined by \n\n}<｜User｜>{user}
//           <｜Assistant｜>{assistant}<｜end▁of▁sentence｜> ...
//           [<｜Assistant｜>]
//  llama3   {bos}<|start_header_id|>{role}<|end_header_id|>\n\n{trim(content)}
//           <|eot_id|> ... [<|start_header_id|>assistant<|end_header_id|>\n\n]
//  mistral  {bos}[INST] {user} [/INST]{assistant}{eos} ...; a system message
//           is put before the first user message (separated by \n\n).
//
//===----------------------------------------------------------------------===//

#include "ChatTemplate.h"

namespace kt::tok {

namespace {

std::string trim(const std::string &s) {
  const char *ws = " \t\n\r\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos)
    return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

/// The default system prompt a ChatML template writes itself, if any:
/// the literal text between "<|im_start|>system" + newline (a real newline
/// or the two characters \n) and "<|im_end|>" inside one string literal.
std::string chatmlDefaultSystem(const std::string &tmpl) {
  const std::string open = "<|im_start|>system";
  for (size_t pos = tmpl.find(open); pos != std::string::npos;
       pos = tmpl.find(open, pos + 1)) {
    size_t p = pos + open.size();
    if (tmpl.compare(p, 2, "\\n") == 0)
      p += 2;
    else if (p < tmpl.size() && tmpl[p] == '\n')
      p += 1;
    else
      continue;
    size_t end = tmpl.find("<|im_end|>", p);
    if (end == std::string::npos)
      continue;
    std::string text = tmpl.substr(p, end - p);
    // Only a plain literal: no quote or Jinja expression inside it.
    if (text.empty() || text.find_first_of("'\"{}+") != std::string::npos)
      continue;
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
        out += '\n';
        ++i;
      } else {
        out += text[i];
      }
    }
    return out;
  }
  return "";
}

std::string renderChatml(const ChatSettings &s,
                         const std::vector<ChatMessage> &messages,
                         bool addGenerationPrompt) {
  std::string out;
  if (messages.empty() || messages.front().role != "system") {
    std::string sys = chatmlDefaultSystem(s.templateText);
    if (!sys.empty())
      out += "<|im_start|>system\n" + sys + "<|im_end|>\n";
  }
  for (const auto &m : messages)
    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (addGenerationPrompt)
    out += "<|im_start|>assistant\n";
  return out;
}

Result<std::string> renderDeepseek(const ChatSettings &s,
                                   const std::vector<ChatMessage> &messages,
                                   bool addGenerationPrompt) {
  std::string system;
  for (const auto &m : messages)
    if (m.role == "system")
      system += (system.empty() ? "" : "\n\n") + m.content;
  std::string out = s.bosToken + system;
  for (const auto &m : messages) {
    if (m.role == "system")
      continue;
    if (m.role == "user")
      out += "<｜User｜>" + m.content;
    else if (m.role == "assistant")
      out += "<｜Assistant｜>" + m.content + "<｜end▁of▁sentence｜>";
    else
      return Error{"chat template deepseek: role '" + m.role +
                   "' is not supported (system, user, assistant)"};
  }
  if (addGenerationPrompt) {
    out += "<｜Assistant｜>";
    // DeepSeek-R1 style templates open the reasoning block themselves.
    if (s.templateText.find("<｜Assistant｜><think>\\n") != std::string::npos ||
        s.templateText.find("<｜Assistant｜><think>\n") != std::string::npos)
      out += "<think>\n";
  }
  return out;
}

std::string renderLlama3(const ChatSettings &s,
                         const std::vector<ChatMessage> &messages,
                         bool addGenerationPrompt) {
  std::string out = s.bosToken;
  for (const auto &m : messages)
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" +
           trim(m.content) + "<|eot_id|>";
  if (addGenerationPrompt)
    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

Result<std::string> renderMistral(const ChatSettings &s,
                                  const std::vector<ChatMessage> &messages) {
  std::string system;
  for (const auto &m : messages)
    if (m.role == "system")
      system += (system.empty() ? "" : "\n\n") + m.content;
  std::string out = s.bosToken;
  bool firstUser = true;
  for (const auto &m : messages) {
    if (m.role == "system")
      continue;
    if (m.role == "user") {
      std::string content = m.content;
      if (firstUser && !system.empty())
        content = system + "\n\n" + content;
      firstUser = false;
      out += "[INST] " + content + " [/INST]";
    } else if (m.role == "assistant") {
      out += m.content + s.eosToken;
    } else {
      return Error{"chat template mistral: role '" + m.role +
                   "' is not supported (system, user, assistant)"};
    }
  }
  return out;
}

} // namespace

std::string detectChatFamily(const std::string &t) {
  if (t.find("<|im_start|>") != std::string::npos)
    return "chatml";
  if (t.find("<｜User｜>") != std::string::npos)
    return "deepseek";
  if (t.find("<|start_header_id|>") != std::string::npos)
    return "llama3";
  if (t.find("[INST]") != std::string::npos)
    return "mistral";
  return "";
}

Result<std::string> renderChat(const ChatSettings &s,
                               const std::vector<ChatMessage> &messages,
                               bool addGenerationPrompt) {
  if (s.templateText.empty())
    return Error{
        std::string("tokenizer_config.json: no chat_template (built-in "
                    "families: ") +
        kChatFamilies + ")"};
  if (s.family == "chatml")
    return renderChatml(s, messages, addGenerationPrompt);
  if (s.family == "deepseek")
    return renderDeepseek(s, messages, addGenerationPrompt);
  if (s.family == "llama3")
    return renderLlama3(s, messages, addGenerationPrompt);
  if (s.family == "mistral")
    return renderMistral(s, messages);
  return Error{std::string("tokenizer_config.json: chat_template is not of a "
                           "supported family (") +
               kChatFamilies + "); no Jinja engine is built in"};
}

} // namespace kt::tok
